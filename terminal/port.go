package terminal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"syscall"

	"go.bug.st/serial"
)

// Defaults of the serial port.
const (
	DefaultBaud   = 9600
	DefaultFormat = "8N1"
)

// PortOptions says which serial port to open and how.
type PortOptions struct {
	// Path is the device: /dev/ttyACM0 (USB CDC), /dev/ttyUSB0 or
	// /dev/ttyS0 (RS-232), COM8 on Windows.
	Path string
	// Baud is the line speed. The default is 9600.
	Baud int
	// Format is data bits, parity and stop bits: "8N1" (the default, for
	// USB CDC where the line coding is virtual) or "7E1" (Concert on a
	// native RS-232 line); 7E2, 8E1, 7O1, 8N2 are accepted too.
	Format string
	// Plain opens Path as a plain file, without any serial (termios)
	// settings. It is for devices that refuse them; a pseudo-terminal
	// accepts them (go.bug.st/serial opens one fine), so the simulator does
	// not need it.
	Plain bool
}

func (o *PortOptions) setDefaults() {
	if o.Baud <= 0 {
		o.Baud = DefaultBaud
	}
	if o.Format == "" {
		o.Format = DefaultFormat
	}
}

// Errors of opening a port, for errors.Is. Each PortError's message says
// what to do.
var (
	ErrPortBusy       = errors.New("serial port busy")
	ErrPortMissing    = errors.New("serial port not found")
	ErrPortPermission = errors.New("permission denied on the serial port")
	ErrNotSerial      = errors.New("not a serial port")
	ErrBadPortOptions = errors.New("bad serial port settings")
)

// PortError says why a port could not be opened and what to do about it.
type PortError struct {
	Path string
	// Kind is one of the ErrPort* sentinels.
	Kind error
	// Hint is what the operator can do.
	Hint string
	Err  error
}

func (e *PortError) Error() string {
	s := fmt.Sprintf("open %s: %v", e.Path, e.Kind)
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Unwrap lets errors.Is match both the kind and the cause.
func (e *PortError) Unwrap() []error { return []error{e.Kind, e.Err} }

// ParseFormat reads "8N1", "7E1" and the like into a serial mode.
func ParseFormat(f string) (serial.Mode, error) {
	var m serial.Mode
	f = strings.ToUpper(strings.TrimSpace(f))
	if len(f) != 3 {
		return m, fmt.Errorf("%w: format %q is not like 8N1 or 7E1", ErrBadPortOptions, f)
	}
	switch f[0] {
	case '7':
		m.DataBits = 7
	case '8':
		m.DataBits = 8
	default:
		return m, fmt.Errorf("%w: %c data bits in %q: use 7 or 8", ErrBadPortOptions, f[0], f)
	}
	switch f[1] {
	case 'N':
		m.Parity = serial.NoParity
	case 'E':
		m.Parity = serial.EvenParity
	case 'O':
		m.Parity = serial.OddParity
	default:
		return m, fmt.Errorf("%w: parity %c in %q: use N, E or O", ErrBadPortOptions, f[1], f)
	}
	switch f[2] {
	case '1':
		m.StopBits = serial.OneStopBit
	case '2':
		m.StopBits = serial.TwoStopBits
	default:
		return m, fmt.Errorf("%w: %c stop bits in %q: use 1 or 2", ErrBadPortOptions, f[2], f)
	}
	return m, nil
}

// OpenPort opens the terminal's serial port. Modem lines are left alone
// (InitialStatusBits nil): pseudo-terminals and many USB adapters refuse
// the modem ioctls with ENOTTY, and Concert does not use them.
func OpenPort(o PortOptions) (Port, error) {
	o.setDefaults()
	if o.Path == "" {
		return nil, &PortError{Path: "(none)", Kind: ErrPortMissing, Hint: "set the terminal's serial port (SERIAL_PORT in config.txt, or --terminal-port)"}
	}
	if o.Plain {
		f, err := os.OpenFile(o.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			return nil, classifyOpen(o.Path, err)
		}
		return &plainPort{File: f}, nil
	}
	mode, err := ParseFormat(o.Format)
	if err != nil {
		return nil, err
	}
	mode.BaudRate = o.Baud
	p, err := serial.Open(o.Path, &mode)
	if err != nil {
		return nil, classifyOpen(o.Path, err)
	}
	return p, nil
}

// classifyOpen turns an open error into a PortError that says what to do.
func classifyOpen(path string, err error) error {
	var pe *serial.PortError
	code := serial.PortErrorCode(-1)
	if errors.As(err, &pe) {
		code = pe.Code()
	}
	switch {
	case code == serial.PortBusy || errors.Is(err, syscall.EBUSY):
		return &PortError{Path: path, Kind: ErrPortBusy, Err: err,
			Hint: "another program has it open (another paydesk, the HiPay tp-manager, ModemManager, a serial console): close it"}
	case code == serial.PortNotFound || errors.Is(err, fs.ErrNotExist):
		return &PortError{Path: path, Kind: ErrPortMissing, Err: err,
			Hint: "check the cable and the device name (ls /dev/ttyACM* /dev/ttyUSB*; COMn on Windows)"}
	case code == serial.PermissionDenied || errors.Is(err, fs.ErrPermission):
		hint := "run paydesk as a user allowed to use the port"
		if runtime.GOOS == "linux" {
			hint = "add the user to the dialout group (sudo usermod -a -G dialout $USER), then log in again"
		}
		return &PortError{Path: path, Kind: ErrPortPermission, Err: err, Hint: hint}
	case code == serial.InvalidSerialPort:
		return &PortError{Path: path, Kind: ErrNotSerial, Err: err,
			Hint: "the device refuses serial settings; if it is a pseudo-terminal or a bridge that needs none, open it with the plain option"}
	case code == serial.InvalidSpeed || code == serial.InvalidDataBits || code == serial.InvalidParity || code == serial.InvalidStopBits:
		return &PortError{Path: path, Kind: ErrBadPortOptions, Err: err, Hint: "check the baud rate and format (8N1 or 7E1)"}
	}
	return &PortError{Path: path, Kind: ErrNotSerial, Err: err}
}

// plainPort is a device opened as a plain file (PortOptions.Plain). On
// Linux it can flush its input like a serial port (port_linux.go).
type plainPort struct{ *os.File }
