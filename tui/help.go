package tui

import (
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
)

// helpFor adapts the active view's keys to bubbles/help: the footer's
// short help is the view's, the full help on the menu lists every key.
type helpFor struct{ m *Model }

// ShortHelp lists the keys that do something on the current screen. The
// Payment key, which the root handles, is listed only while the operator
// looks away from a payment.
func (h helpFor) ShortHelp() []key.Binding {
	bs := h.m.active().shortHelp()
	pay := h.m.c.keys.Payment
	for i, b := range bs {
		if slices.Equal(b.Keys(), pay.Keys()) && b.Help() == pay.Help() {
			bs[i].SetEnabled(h.m.away())
		}
	}
	return bs
}

// FullHelp lists every key of the screen, grouped; on the menu it lists
// every key of the console.
func (h helpFor) FullHelp() [][]key.Binding {
	if h.m.screen == scrMenu {
		groups := h.m.menu.fullHelp()
		for _, g := range groups {
			for i, b := range g {
				if slices.Equal(b.Keys(), h.m.c.keys.Payment.Keys()) {
					g[i].SetEnabled(h.m.away())
				}
			}
		}
		return groups
	}
	return [][]key.Binding{h.ShortHelp()}
}

// move and page are the arrows and the page keys, in one entry each so
// a footer fits a narrow window.
func move(km *KeyMap) key.Binding {
	return anyOfHelp(km.Up.Help().Key+"/"+km.Down.Help().Key, "move", km.Up, km.Down)
}

func page(km *KeyMap) key.Binding {
	return anyOfHelp(km.PageUp.Help().Key+"/"+km.PageDown.Help().Key, "page", km.PageUp, km.PageDown)
}

// anyKey is the help of a screen any key leaves.
func anyKey() key.Binding {
	return key.NewBinding(key.WithKeys("any"), key.WithHelp("any key", "menu"))
}

// anyOfHelp is anyOf bs shown as k and desc.
func anyOfHelp(k, desc string, bs ...key.Binding) key.Binding {
	b := anyOf(bs...)
	b.SetHelp(k, desc)
	return b
}

// only is b, listed only when on is set (its screen exists).
func only(b key.Binding, on bool) key.Binding {
	b.SetEnabled(on)
	return b
}

// withHelp is b described as desc on one screen.
func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// anyOf is a binding for the keys of bs, shown as "a/b/…".
func anyOf(bs ...key.Binding) key.Binding {
	var keys, help []string
	for _, b := range bs {
		keys, help = append(keys, b.Keys()...), append(help, b.Help().Key)
	}
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(strings.Join(help, "/"), ""))
}
