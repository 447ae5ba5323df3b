package mllptest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/hl7/mllptest"
)

const msgFmt = "MSH|^~\\&|RPMBridge||EHR|HOSP|20250102101500+0000||ORU^R01^ORU_R01|%s|P|2.6\rPID|||MRN1^^^HOSP^MR\r"

func msg(id string) []byte { return []byte(fmt.Sprintf(msgFmt, id)) }

// client is a raw MLLP connection to the server.
type client struct {
	t  *testing.T
	c  net.Conn
	r  *hl7.Reader
	br *bufio.Reader
}

func dial(t *testing.T, srv *mllptest.Server) *client {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a guard against hangs
	br := bufio.NewReader(c)
	return &client{t: t, c: c, r: hl7.NewReader(br, 0), br: br}
}

func (c *client) send(m []byte) {
	c.t.Helper()
	if _, err := c.c.Write(hl7.AppendFrame(nil, m)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) ack() hl7.ACK {
	c.t.Helper()
	f, err := c.r.ReadFrame()
	if err != nil {
		c.t.Fatalf("reading ACK: %v", err)
	}
	a, err := hl7.ParseACK(f)
	if err != nil {
		c.t.Fatalf("parsing ACK: %v", err)
	}
	return a
}

func start(t *testing.T, cfg mllptest.Config) *mllptest.Server {
	t.Helper()
	srv, err := mllptest.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestServerAcksAndCounts(t *testing.T) {
	srv := start(t, mllptest.Config{KeepBodies: true})
	c := dial(t, srv)
	for _, id := range []string{"A1", "A2", "A1"} {
		c.send(msg(id))
		if a := c.ack(); a.Code != hl7.CodeAA || a.ControlID != id || a.MessageControlID == "" {
			t.Errorf("ACK for %s = %+v", id, a)
		}
	}
	if got, want := srv.Received(), []string{"A1", "A2", "A1"}; !slices.Equal(got, want) {
		t.Errorf("Received = %q, want %q", got, want)
	}
	if srv.Count("A1") != 2 || srv.Count("A2") != 1 || srv.Count("none") != 0 {
		t.Errorf("counts A1=%d A2=%d", srv.Count("A1"), srv.Count("A2"))
	}
	ms := srv.Messages()
	if len(ms) != 3 || ms[1].Conn != 1 || string(ms[1].Body) != string(msg("A2")) {
		t.Errorf("Messages = %+v", ms)
	}
	c2 := dial(t, srv)
	c2.send(msg("B1"))
	c2.ack()
	if srv.Connections() != 2 || !slices.Equal(srv.ReceivedOn(2), []string{"B1"}) || len(srv.ReceivedOn(1)) != 3 {
		t.Errorf("Connections = %d, on 1: %q, on 2: %q", srv.Connections(), srv.ReceivedOn(1), srv.ReceivedOn(2))
	}
}

func TestServerActions(t *testing.T) {
	srv := start(t, mllptest.Config{})
	c := dial(t, srv)

	srv.SetAction(mllptest.Action{Code: hl7.CodeAE, ErrorCode: "102", Text: "bad value"})
	c.send(msg("M1"))
	if a := c.ack(); a.Code != hl7.CodeAE || a.ErrorCode != "102" || a.Text != "bad value" {
		t.Errorf("AE ACK = %+v", a)
	}

	srv.SetAction(mllptest.Action{StrayControlID: "OLD", StrayCode: hl7.CodeAR})
	c.send(msg("M2"))
	if a := c.ack(); a.ControlID != "OLD" || a.Code != hl7.CodeAR {
		t.Errorf("stray ACK = %+v", a)
	}
	if a := c.ack(); a.ControlID != "M2" || a.Code != hl7.CodeAA {
		t.Errorf("ACK after the stray = %+v", a)
	}

	srv.SetAction(mllptest.Action{Twice: true})
	c.send(msg("M3"))
	a1, a2 := c.ack(), c.ack()
	if a1 != a2 || a1.ControlID != "M3" {
		t.Errorf("twice: %+v then %+v", a1, a2)
	}

	srv.SetAction(mllptest.Action{Raw: []byte("garbage")})
	c.send(msg("M4"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "garbage" {
		t.Errorf("raw answer %q, %v", buf, err)
	}

	// NoACK: the next message on the connection is still served.
	srv.SetBehavior(func(_ []byte, id string) mllptest.Action { return mllptest.Action{NoACK: id == "M5"} })
	c.send(msg("M5"))
	c.send(msg("M6"))
	if a := c.ack(); a.ControlID != "M6" {
		t.Errorf("ACK after an unanswered message = %+v", a)
	}
}

func TestServerDropsConnection(t *testing.T) {
	closed := make(chan int, 4)
	srv := start(t, mllptest.Config{OnClose: func(conn int) { closed <- conn }})

	srv.SetAction(mllptest.Action{Close: true})
	c := dial(t, srv)
	c.send(msg("C1"))
	if _, err := c.r.ReadFrame(); err != io.EOF {
		t.Errorf("after Close: %v, want io.EOF", err)
	}
	if conn := <-closed; conn != 1 {
		t.Errorf("closed connection %d", conn)
	}

	srv.SetAction(mllptest.Action{Reset: true})
	c = dial(t, srv)
	c.send(msg("R1"))
	if _, err := c.r.ReadFrame(); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after Reset: %v, want ECONNRESET", err)
	}
	<-closed

	srv.SetAction(mllptest.Action{})
	c = dial(t, srv)
	c.send([]byte("PID|||no header\r")) // nothing to acknowledge
	if _, err := c.r.ReadFrame(); err != io.EOF {
		t.Errorf("after a message without MSH: %v, want io.EOF", err)
	}
	if got := srv.Received(); !slices.Equal(got, []string{"C1", "R1", ""}) {
		t.Errorf("Received = %q", got)
	}
}

func TestServerCloseEndsDelayAndHold(t *testing.T) {
	held := make(chan string, 2)
	srv, err := mllptest.NewServer(mllptest.Config{Behave: func(_ []byte, id string) mllptest.Action {
		held <- id
		if id == "D" {
			return mllptest.Action{Delay: time.Hour}
		}
		return mllptest.Action{NoACK: true}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c1, c2 := dial(t, srv), dial(t, srv)
	c1.send(msg("D"))
	c2.send(msg("H"))
	<-held
	<-held
	srv.Close() // returns although one answer is an hour away
	for _, c := range []*client{c1, c2} {
		if _, err := c.r.ReadFrame(); err == nil {
			t.Error("an answer after Close")
		}
	}
}

// Example shows the server standing in for an interface engine in a test of
// the sender.
func Example() {
	srv, err := mllptest.NewServer(mllptest.Config{Behave: func(_ []byte, id string) mllptest.Action {
		if id == "MSG2" {
			return mllptest.Action{Code: hl7.CodeAE, ErrorCode: "102", Text: "OBX-5 not numeric"}
		}
		return mllptest.Action{}
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	s, err := hl7.NewSender(hl7.SenderConfig{Addr: srv.Addr()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for _, id := range []string{"MSG1", "MSG2"} {
		ack, err := s.Send(context.Background(), msg(id), id)
		fmt.Println(id, ack.Code, err)
	}
	fmt.Println(srv.Received(), srv.Count("MSG1"), srv.Connections())
	// Output:
	// MSG1 AA <nil>
	// MSG2 AE hl7: message MSG2 not accepted: AE (error 102): OBX-5 not numeric
	// [MSG1 MSG2] 1 1
}
