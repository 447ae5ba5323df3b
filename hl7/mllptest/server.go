// Package mllptest provides an MLLP interface engine stand-in for tests
// and demos: a server on 127.0.0.1 that reads HL7 v2 messages in MLLP
// blocks (hl7.Reader), answers each with an acknowledgement built by
// hl7.NewACK, and records what it received.
//
// What it answers is decided per message by a behaviour function, which can
// be changed at any time: accept (AA, the default), reject (AE, AR or any
// table 0008 code, with text and error code), answer late, never answer,
// drop the connection, send an acknowledgement for another message first,
// or send the acknowledgement twice. Received control ids (MSH-10) are
// counted, so tests can detect duplicate deliveries, and kept in arrival
// order with the connection they came on.
package mllptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhir-bridge/fhir-bridge/hl7"
)

// Action is the server's response to one message. The zero Action
// acknowledges with AA at once.
type Action struct {
	// Code is MSA-1. Default: hl7.CodeAA.
	Code string
	// Text is written to MSA-3 and, for a negative code, to ERR-8.
	Text string
	// ErrorCode is ERR-3.1 (HL7 table 0357), for example "207".
	ErrorCode string
	// Delay is waited before answering; closing the server ends the wait
	// and the connection.
	Delay time.Duration
	// NoACK sends nothing: the connection stays open, unanswered, until the
	// client closes it or sends another message.
	NoACK bool
	// Close closes the connection without an answer (a FIN).
	Close bool
	// Reset resets the connection without an answer (an RST: the socket is
	// closed with SO_LINGER 0).
	Reset bool
	// StrayControlID, when set, makes the server first send an ACK for a
	// message with this control id, as a late or misrouted ACK would be,
	// before the right one. Its code is StrayCode, default AA.
	StrayControlID string
	StrayCode      string
	// Twice sends the acknowledgement twice.
	Twice bool
	// Raw, when not nil, is written as it is instead of an acknowledgement
	// (no MLLP framing is added).
	Raw []byte
}

// Behavior decides the answer to one message. msg is the message without
// MLLP framing, valid only during the call; controlID is its MSH-10 ("" if
// it has none). It is called from the connection's goroutine, one message
// at a time per connection, concurrently for different connections.
type Behavior func(msg []byte, controlID string) Action

// Config configures a Server. The zero Config is a plain TCP server that
// accepts every message.
type Config struct {
	// TLS, when not nil, makes the server speak TLS. Set ClientAuth to
	// tls.RequireAndVerifyClientCert and ClientCAs to require mutual TLS.
	TLS *tls.Config
	// Behave is the initial behaviour; nil acknowledges every message with
	// AA. SetBehavior changes it.
	Behave Behavior
	// MaxFrameSize is the largest message read. Default:
	// hl7.DefaultMaxFrameSize.
	MaxFrameSize int
	// KeepBodies keeps a copy of every message in Message.Body.
	KeepBodies bool
	// OnConnect and OnClose, when set, are called from the connection's
	// goroutine when a connection (numbered from 1 in accept order) is
	// accepted and once it is closed, for whatever reason. Tests use them to
	// wait for these events without sleeping.
	OnConnect func(conn int)
	OnClose   func(conn int)
	// Now gives MSH-7 of the acknowledgements. Default: time.Now.
	Now func() time.Time
}

// Message is one message the server received.
type Message struct {
	Conn      int    // connection number, from 1 in accept order
	ControlID string // MSH-10, "" if the message has none
	Body      []byte // the message, when Config.KeepBodies is set
}

// Server is a running test MLLP server.
type Server struct {
	cfg    Config
	ln     net.Listener
	behave atomic.Pointer[Behavior]
	done   chan struct{}
	wg     sync.WaitGroup
	acks   atomic.Uint64 // numbers the acknowledgements' MSH-10

	mu       sync.Mutex
	closed   bool
	nconn    int
	conns    map[int]net.Conn
	received []Message
	counts   map[string]int
}

// NewServer starts a server listening on 127.0.0.1 on a free port.
func NewServer(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:    cfg,
		ln:     ln,
		done:   make(chan struct{}),
		conns:  make(map[int]net.Conn),
		counts: make(map[string]int),
	}
	s.SetBehavior(cfg.Behave)
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetBehavior replaces the behaviour for the messages that arrive from now
// on; nil acknowledges every message with AA.
func (s *Server) SetBehavior(b Behavior) {
	if b == nil {
		b = func([]byte, string) Action { return Action{} }
	}
	s.behave.Store(&b)
}

// SetAction answers every message that arrives from now on with a.
func (s *Server) SetAction(a Action) {
	s.SetBehavior(func([]byte, string) Action { return a })
}

// Received returns the control ids of all received messages in arrival
// order (per connection; across connections, in the order the server
// recorded them).
func (s *Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.received))
	for i, m := range s.received {
		ids[i] = m.ControlID
	}
	return ids
}

// ReceivedOn returns the control ids received on connection conn, in
// order.
func (s *Server) ReceivedOn(conn int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, m := range s.received {
		if m.Conn == conn {
			ids = append(ids, m.ControlID)
		}
	}
	return ids
}

// Messages returns every received message in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.received...)
}

// Count returns how many times a message with MSH-10 controlID was
// received; more than one is a duplicate delivery.
func (s *Server) Count(controlID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[controlID]
}

// Connections returns the number of connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconn
}

// Close stops the server: it closes the listener and every connection and
// waits for the connection goroutines (and so the hooks) to finish.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.nconn++
		id := s.nconn
		s.conns[id] = c
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(id, c)
	}
}

// handle serves one connection: one message at a time, answered before the
// next is read.
func (s *Server) handle(id int, c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, id)
		s.mu.Unlock()
		if s.cfg.OnClose != nil {
			s.cfg.OnClose(id)
		}
	}()
	if s.cfg.OnConnect != nil {
		s.cfg.OnConnect(id)
	}
	r := hl7.NewReader(c, s.cfg.MaxFrameSize)
	var out []byte
	for {
		msg, err := r.ReadFrame()
		if err != nil {
			return
		}
		cid := controlID(msg)
		m := Message{Conn: id, ControlID: cid}
		if s.cfg.KeepBodies {
			m.Body = bytes.Clone(msg)
		}
		s.mu.Lock()
		s.received = append(s.received, m)
		s.counts[cid]++
		s.mu.Unlock()

		a := (*s.behave.Load())(msg, cid)
		if a.Delay > 0 {
			t := time.NewTimer(a.Delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		switch {
		case a.Reset:
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return
		case a.Close:
			return
		case a.NoACK:
			continue
		case a.Raw != nil:
			if _, err := c.Write(a.Raw); err != nil {
				return
			}
			continue
		}
		out = out[:0]
		if a.StrayControlID != "" {
			code := a.StrayCode
			if code == "" {
				code = hl7.CodeAA
			}
			stray, err := s.ack(withControlID(msg, a.StrayControlID), Action{Code: code})
			if err != nil {
				return
			}
			out = hl7.AppendFrame(out, stray)
		}
		ack, err := s.ack(msg, a)
		if err != nil {
			return // no MSH to acknowledge: drop the connection
		}
		out = hl7.AppendFrame(out, ack)
		if a.Twice {
			out = hl7.AppendFrame(out, ack)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// ack builds the acknowledgement of msg.
func (s *Server) ack(msg []byte, a Action) ([]byte, error) {
	code := a.Code
	if code == "" {
		code = hl7.CodeAA
	}
	return hl7.NewACK(msg, hl7.Reply{
		Code:      code,
		Text:      a.Text,
		ErrorCode: a.ErrorCode,
		ControlID: "ACK" + strconv.FormatUint(s.acks.Add(1), 10),
		Time:      s.cfg.Now(),
	})
}

// mshFields returns the first segment of msg split by its field separator
// (part k is MSH-(k+1) for k >= 1), or nil if msg does not start with MSH.
func mshFields(msg []byte) [][]byte {
	end := bytes.IndexAny(msg, "\r\n")
	if end < 0 {
		end = len(msg)
	}
	msh := msg[:end]
	if len(msh) < 4 || !bytes.HasPrefix(msh, []byte("MSH")) {
		return nil
	}
	return bytes.Split(msh, msh[3:4])
}

// controlID returns MSH-10 of msg, or "".
func controlID(msg []byte) string {
	if f := mshFields(msg); len(f) > 9 {
		return string(f[9])
	}
	return ""
}

// withControlID returns a copy of msg with MSH-10 set to id.
func withControlID(msg []byte, id string) []byte {
	f := mshFields(msg)
	if f == nil {
		return msg
	}
	for len(f) <= 9 {
		f = append(f, nil)
	}
	f[9] = []byte(id)
	end := bytes.IndexAny(msg, "\r\n")
	if end < 0 {
		end = len(msg)
	}
	out := bytes.Join(f, msg[3:4])
	return append(out, msg[end:]...)
}
