package tui

import (
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Semantic colours: what a colour means, not which it is. NO_COLOR and
// non-colour terminals are handled by lipgloss's colour profile.
var (
	colorApproved = lipgloss.AdaptiveColor{Light: "#1B7F3B", Dark: "#3FD07A"}
	colorDeclined = lipgloss.AdaptiveColor{Light: "#B3261E", Dark: "#FF6B6B"}
	colorPending  = lipgloss.AdaptiveColor{Light: "#8A6D00", Dark: "#F2C94C"}
	colorMuted    = lipgloss.AdaptiveColor{Light: "#6B6B6B", Dark: "#8C8C8C"}
	colorAccent   = lipgloss.AdaptiveColor{Light: "#3D5AFE", Dark: "#8C9EFF"}
)

// Styles holds every style the views use; View code never builds its own.
type Styles struct {
	Header, Demo, Title, Muted, Selected, Disabled lipgloss.Style
	Approved, Declined, Pending, ErrorText, Box    lipgloss.Style
	// Unmatched highlights a till payment that matched no sale.
	Unmatched lipgloss.Style
}

// DefaultStyles returns the console's styles.
func DefaultStyles() *Styles {
	return &Styles{
		Header:    lipgloss.NewStyle().Bold(true),
		Demo:      lipgloss.NewStyle().Bold(true).Foreground(colorPending),
		Title:     lipgloss.NewStyle().Bold(true).Foreground(colorAccent),
		Muted:     lipgloss.NewStyle().Foreground(colorMuted),
		Selected:  lipgloss.NewStyle().Bold(true).Foreground(colorAccent),
		Disabled:  lipgloss.NewStyle().Foreground(colorMuted),
		Approved:  lipgloss.NewStyle().Bold(true).Foreground(colorApproved),
		Declined:  lipgloss.NewStyle().Bold(true).Foreground(colorDeclined),
		Pending:   lipgloss.NewStyle().Foreground(colorPending),
		ErrorText: lipgloss.NewStyle().Foreground(colorDeclined),
		Box:       lipgloss.NewStyle().Border(lipgloss.NormalBorder()).BorderForeground(colorMuted).Padding(0, 1),
		Unmatched: lipgloss.NewStyle().Bold(true).Reverse(true).Foreground(colorPending),
	}
}

// noColour is set when the terminal shows no colour or attributes at all
// (NO_COLOR, a dumb terminal): then marks are drawn as characters.
func noColour() bool {
	return lipgloss.ColorProfile() == termenv.Ascii
}

// cursorMark stands for the text cursor where no reverse video shows.
const cursorMark = "|"

// inputView draws a text field. Without colour its cursor would be
// invisible (it is reverse video), so a bar marks where typing goes; the
// placeholder reads as an example ("e.g. …") either way.
func inputView(s *Styles, ti textinput.Model) string {
	if !noColour() || !ti.Focused() {
		return ti.View()
	}
	v := []rune(ti.Value())
	if len(v) == 0 {
		return ti.Prompt + cursorMark + s.Muted.Render(ti.Placeholder)
	}
	pos := min(ti.Position(), len(v))
	return ti.Prompt + string(v[:pos]) + cursorMark + string(v[pos:])
}
