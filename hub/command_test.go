package hub

import (
	"context"
	"testing"

	"paydesk/hub/pgtemp/pgtest"
)

// TestACommandOpensFewConnections: 'paydesk hub report', 'kiosk add' and
// the other one-shot commands make one or two queries and exit; they open
// a connection or two, not the twelve a serving hub makes ahead for its
// callbacks and links.
func TestACommandOpensFewConnections(t *testing.T) {
	dsn := pgtest.DB(t)
	ctx := context.Background()
	s, err := OpenForCommand(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Kiosks(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.pool.Stat()
	if st.MaxConns() > 2 || s.pool.Config().MinConns != 0 {
		t.Fatalf("a command's pool: at most %d connections, %d made ahead; want at most 2, none ahead", st.MaxConns(), s.pool.Config().MinConns)
	}
	serving, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer serving.Close()
	if serving.pool.Config().MinConns < 12 {
		t.Fatalf("a serving hub makes %d connections ahead, want 12", serving.pool.Config().MinConns)
	}
}
