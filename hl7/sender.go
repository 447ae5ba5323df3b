package hl7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of SenderConfig.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultAckTimeout  = 10 * time.Second
	DefaultBackoffMin  = 100 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
)

var (
	// ErrAckTimeout is wrapped by the *SendError of a Send whose
	// acknowledgement did not arrive before SenderConfig.AckTimeout.
	ErrAckTimeout = errors.New("hl7: no acknowledgement before the ACK timeout")
	// ErrClosed is wrapped by the *SendError of a Send on, or interrupted
	// by, a closed Sender or Pool.
	ErrClosed = errors.New("hl7: MLLP sender closed")
	// ErrInvalidMessage is wrapped by the *SendError of a Send whose message
	// or control id cannot be sent; it is the only non-temporary SendError.
	ErrInvalidMessage = errors.New("hl7: invalid message")
)

// SenderConfig configures a Sender. Only Addr is required.
type SenderConfig struct {
	// Addr is the interface engine's host:port.
	Addr string
	// TLS, when not nil, wraps the connection in TLS ("MLLPS"); nil means
	// plain TCP. The caller's tls.Config decides everything: trusted CAs
	// (RootCAs), a client certificate for mutual TLS (Certificates), and the
	// minimum version, which should be TLS 1.2 or later; TLSConfig builds
	// such a config from PEM files. When ServerName is empty, the host part
	// of Addr is verified.
	TLS *tls.Config
	// DialTimeout bounds connecting, including the TLS handshake. Default:
	// DefaultDialTimeout (5s).
	DialTimeout time.Duration
	// AckTimeout bounds one exchange, from writing the message to reading
	// its acknowledgement. The context given to Send can shorten it, never
	// lengthen it. Default: DefaultAckTimeout (10s).
	AckTimeout time.Duration
	// MaxFrameSize is the largest acknowledgement accepted, in bytes between
	// the MLLP block characters. Default: DefaultMaxFrameSize (1 MiB).
	MaxFrameSize int
	// BackoffMin and BackoffMax bound the wait before reconnecting after a
	// failed connection: BackoffMin after the first failure, doubling with
	// each consecutive failure up to BackoffMax, each wait drawn at random
	// from its upper half (jitter) so that many senders do not reconnect in
	// step. The count restarts when an acknowledgement is read. Defaults:
	// DefaultBackoffMin (100ms) and DefaultBackoffMax (10s). A negative
	// BackoffMin disables the backoff.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Dialer opens the network connection; TLS, when configured, is layered
	// on top of it. Default: a net.Dialer's DialContext. Tests use it to
	// inject failures.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Sleep waits for d or until ctx is done, returning ctx.Err() in the
	// second case; it is used for the reconnect backoff. Default: a timer.
	// Tests use it to observe the backoff without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Validate reports the first problem with c, if any.
func (c SenderConfig) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("hl7: SenderConfig.Addr: missing")
	case c.DialTimeout < 0:
		return errors.New("hl7: SenderConfig.DialTimeout: negative")
	case c.AckTimeout < 0:
		return errors.New("hl7: SenderConfig.AckTimeout: negative")
	case c.MaxFrameSize < 0:
		return errors.New("hl7: SenderConfig.MaxFrameSize: negative")
	case c.BackoffMax < 0:
		return errors.New("hl7: SenderConfig.BackoffMax: negative")
	case c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMax < c.BackoffMin:
		return errors.New("hl7: SenderConfig.BackoffMax: less than BackoffMin")
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c SenderConfig) withDefaults() SenderConfig {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Dialer == nil {
		c.Dialer = new(net.Dialer).DialContext
	}
	return c
}

// TLSConfig returns a client TLS configuration for MLLP over TLS: TLS 1.2 or
// later, server certificates verified against the PEM certificates in
// caFile (or the system roots when caFile is empty), serverName as the name
// to verify (empty: the host of SenderConfig.Addr), and, when certFile and
// keyFile are given, the PEM client certificate and key presented for mutual
// TLS.
func TLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("hl7: reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("hl7: CA file %s: no PEM certificate found", caFile)
		}
		c.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("hl7: loading client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("hl7: client certificate and key files must be given together")
	}
	return c, nil
}

// Stats counts what a Sender or a Pool has done since it was created. Every
// Send ends in exactly one of Acked, Nacked, Timeouts and Failed, so once no
// Send is running their sum is Sends.
type Stats struct {
	Sends      uint64 // calls to Send
	Sent       uint64 // messages written completely to a connection
	Acked      uint64 // Sends answered AA or CA
	Nacked     uint64 // Sends answered AE, AR, CE or CR
	Timeouts   uint64 // Sends that wrote the message but met the deadline (AckTimeout or the context's) before the ACK
	Failed     uint64 // Sends that ended without an ACK for another reason (see SendError.Op)
	Connects   uint64 // connections opened, TLS handshake included
	Reconnects uint64 // connections opened after a Sender's first
	StrayACKs  uint64 // ACKs read and discarded because their MSA-2 was not the control id awaited
}

func (s *Stats) add(o Stats) {
	s.Sends += o.Sends
	s.Sent += o.Sent
	s.Acked += o.Acked
	s.Nacked += o.Nacked
	s.Timeouts += o.Timeouts
	s.Failed += o.Failed
	s.Connects += o.Connects
	s.Reconnects += o.Reconnects
	s.StrayACKs += o.StrayACKs
}

// SendError is the failure of a Send for a reason other than a negative
// acknowledgement. It never contains message content.
type SendError struct {
	// Op is the step that failed:
	//	"send"      the message or control id is invalid (ErrInvalidMessage),
	//	            or the Pool is closed (ErrClosed)
	//	"wait"      the context ended, or the Sender was closed, while
	//	            another Send had the connection
	//	"backoff"   the context ended, or the Sender was closed, while
	//	            waiting to reconnect
	//	"dial"      connecting failed (or the Sender is closed)
	//	"handshake" the TLS handshake failed
	//	"write"     writing the message failed
	//	"read"      no acknowledgement: timeout, cancellation, connection
	//	            closed or reset, MLLP framing error or frame too large
	//	"ack"       a frame that is not an acknowledgement arrived
	Op string
	// Addr is the engine's address.
	Addr string
	// ControlID is the MSH-10 of the message.
	ControlID string
	// Err is the cause.
	Err error
}

// Error describes the failure without message content.
func (e *SendError) Error() string {
	return "hl7: MLLP " + e.Op + " " + e.Addr + ", message " + e.ControlID + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// Temporary reports whether sending the same message again, with the same
// MSH-10, after a backoff may succeed. Only an invalid message
// (ErrInvalidMessage) is not temporary: a transport failure, even a
// configuration error such as a rejected TLS certificate, says nothing
// about the message, so it must not be dead-lettered for it. After a
// failure that happened once the message was written (write, read, ack) the
// outcome is unknown and the engine may have processed the message;
// receivers deduplicate by MSH-10.
func (e *SendError) Temporary() bool { return !errors.Is(e.Err, ErrInvalidMessage) }

// Timeout reports whether the failure was a timeout: the ACK timeout, the
// context's deadline, or a dial timeout.
func (e *SendError) Timeout() bool {
	if errors.Is(e.Err, ErrAckTimeout) || errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Sender delivers messages over one persistent MLLP connection and reads an
// acknowledgement for each. It is safe for concurrent use, but exactly one
// message is in flight at a time: concurrent Sends wait for the connection
// in turn.
//
// A Sender never resends a message. Whether and when to resend after a
// failure or a negative acknowledgement is the caller's decision, made with
// SendError.Temporary and AckError.Temporary; a bounded retry with backoff
// avoids the duplicate floods of engines that resend on every ACK timeout.
type Sender struct {
	cfg     SenderConfig
	tls     *tls.Config
	sem     chan struct{} // holds a token while a Send uses the connection
	closing context.Context
	stop    context.CancelFunc

	mu     sync.Mutex
	cur    *mllpConn // nil when not connected
	closed bool

	// Owned by the Send holding sem.
	failures int       // consecutive connection failures
	retryAt  time.Time // no dial before this time

	sends, sent, acked, nacked, timeouts, failed atomic.Uint64
	connects, strays                             atomic.Uint64
}

// mllpConn is one open connection.
type mllpConn struct {
	nc  net.Conn
	r   *Reader
	buf []byte // the framed message being written, reused
}

// NewSender returns a Sender for cfg. It does not connect: the first Send
// does.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sender{cfg: cfg, sem: make(chan struct{}, 1)}
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
		if s.tls.ServerName == "" {
			host, _, err := net.SplitHostPort(cfg.Addr)
			if err != nil {
				return nil, fmt.Errorf("hl7: SenderConfig.Addr: %w", err)
			}
			s.tls.ServerName = host
		}
	}
	s.closing, s.stop = context.WithCancel(context.Background())
	return s, nil
}

// Send writes msg, one HL7 message whose MSH-10 is controlID, to the
// connection (opening it if needed) and waits for the acknowledgement whose
// MSA-2 is controlID. Acknowledgements for other control ids, such as a
// duplicate ACK of an earlier message, are discarded and counted in
// Stats.StrayACKs; they are never taken for this message's.
//
// The wait ends at the earlier of ctx's deadline and AckTimeout after the
// write; cancelling ctx ends it at once. On a timeout, cancellation or any
// I/O or framing error the connection is closed, so that a late ACK cannot
// arrive on it, and the next Send opens a new one after the reconnect
// backoff.
//
// The result is the ACK and nil for AA and CA; the ACK and its Err(), an
// *AckError, for AE, AR, CE and CR; and an empty ACK and a *SendError when
// no acknowledgement was read. msg is not retained.
func (s *Sender) Send(ctx context.Context, msg []byte, controlID string) (ACK, error) {
	s.sends.Add(1)
	if err := checkMessage(msg, controlID); err != nil {
		s.failed.Add(1)
		return ACK{}, s.newError("send", controlID, err)
	}
	if err := ctx.Err(); err != nil {
		s.failed.Add(1)
		return ACK{}, s.newError("wait", controlID, err)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		s.failed.Add(1)
		return ACK{}, s.newError("wait", controlID, ctx.Err())
	case <-s.closing.Done():
		s.failed.Add(1)
		return ACK{}, s.newError("wait", controlID, ErrClosed)
	}
	defer func() { <-s.sem }()

	s.mu.Lock()
	c, closed := s.cur, s.closed
	s.mu.Unlock()
	if closed {
		s.failed.Add(1)
		return ACK{}, s.newError("dial", controlID, ErrClosed)
	}
	if c == nil {
		var serr *SendError
		if c, serr = s.connect(ctx, controlID); serr != nil {
			s.failed.Add(1)
			return ACK{}, serr
		}
	}

	ack, err := s.exchange(ctx, c, msg, controlID)
	if err != nil {
		s.drop(c)
		if err.Timeout() && (err.Op == "read" || err.Op == "write") {
			s.timeouts.Add(1)
		} else {
			s.failed.Add(1)
		}
		s.noteFailure(err.Err)
		return ACK{}, err
	}
	s.failures = 0
	if ack.Accepted() {
		s.acked.Add(1)
		return ack, nil
	}
	s.nacked.Add(1)
	return ack, ack.Err()
}

// checkMessage rejects what cannot be framed or could never be matched to
// an acknowledgement. Its errors name no content.
func checkMessage(msg []byte, controlID string) error {
	switch {
	case controlID == "":
		return fmt.Errorf("%w: empty control id", ErrInvalidMessage)
	case bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0:
		return fmt.Errorf("%w: message contains an MLLP block character", ErrInvalidMessage)
	}
	msh := msg
	if end := bytes.IndexAny(msh, "\r\n"); end >= 0 {
		msh = msh[:end]
	}
	if len(msh) < 4 || string(msh[:3]) != "MSH" {
		return fmt.Errorf("%w: message does not start with an MSH segment", ErrInvalidMessage)
	}
	if string(mshField(msh, 10)) != controlID {
		return fmt.Errorf("%w: control id is not the message's MSH-10", ErrInvalidMessage)
	}
	return nil
}

// mshField returns field MSH-n (n >= 2) of an MSH segment without copying.
func mshField(msh []byte, n int) []byte {
	fs := msh[3]
	f := msh[4:] // from MSH-2
	for ; n > 2; n-- {
		i := bytes.IndexByte(f, fs)
		if i < 0 {
			return nil
		}
		f = f[i+1:]
	}
	if i := bytes.IndexByte(f, fs); i >= 0 {
		f = f[:i]
	}
	return f
}

// connect waits out the reconnect backoff and opens a connection. The
// caller holds sem.
func (s *Sender) connect(ctx context.Context, controlID string) (*mllpConn, *SendError) {
	if wait := time.Until(s.retryAt); wait > 0 {
		if err := s.sleep(ctx, wait); err != nil {
			return nil, s.newError("backoff", controlID, err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()

	nc, err := s.cfg.Dialer(dctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, s.failedDial(ctx, "dial", controlID, err)
	}
	if s.tls != nil {
		tc := tls.Client(nc, s.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, s.failedDial(ctx, "handshake", controlID, err)
		}
		nc = tc
	}
	c := &mllpConn{nc: nc, r: NewReader(bufio.NewReader(nc), s.cfg.MaxFrameSize)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return nil, s.newError("dial", controlID, ErrClosed)
	}
	s.cur = c
	s.mu.Unlock()
	s.connects.Add(1)
	return c, nil
}

// failedDial builds the error of a failed dial or handshake and starts the
// backoff.
func (s *Sender) failedDial(ctx context.Context, op, controlID string, err error) *SendError {
	switch {
	case s.closing.Err() != nil:
		err = ErrClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	}
	s.noteFailure(err)
	return s.newError(op, controlID, err)
}

// noteFailure counts a connection failure and sets the time before which
// no new connection is opened. A cancelled context or a closed Sender is
// the caller's doing, not the engine's, and does not count.
func (s *Sender) noteFailure(err error) {
	if s.cfg.BackoffMin < 0 || errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
		return
	}
	s.failures++
	s.retryAt = time.Now().Add(backoff(s.failures, s.cfg.BackoffMin, s.cfg.BackoffMax))
}

// backoff returns the wait after n consecutive failures: min doubled n-1
// times, at most max, drawn at random from its upper half.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits for d, or until ctx is done or the Sender is closed.
func (s *Sender) sleep(ctx context.Context, d time.Duration) error {
	if s.cfg.Sleep != nil {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.closing, cancel)()
		err := s.cfg.Sleep(ctx, d)
		if err != nil && s.closing.Err() != nil {
			return ErrClosed
		}
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing.Done():
		return ErrClosed
	}
}

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes one message and reads acknowledgements until the one for
// controlID. The caller holds sem and closes c on error.
func (s *Sender) exchange(ctx context.Context, c *mllpConn, msg []byte, controlID string) (ack ACK, serr *SendError) {
	deadline := time.Now().Add(s.cfg.AckTimeout)
	ctxFirst := false // whether ctx's deadline is the one that applies
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxFirst = d, true
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return ACK{}, s.ioError(ctx, "write", controlID, err, ctxFirst)
	}
	if ctx.Done() != nil {
		// Cancellation interrupts blocked I/O by moving the deadline to the
		// past. If the callback has started, it may still be running, so
		// the connection is dropped even when the exchange succeeded: a
		// later Send must not have its fresh deadline overwritten.
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
		defer func() {
			if !stop() && serr == nil {
				s.drop(c)
			}
		}()
	}

	c.buf = AppendFrame(c.buf[:0], msg)
	if _, err := c.nc.Write(c.buf); err != nil {
		return ACK{}, s.ioError(ctx, "write", controlID, err, ctxFirst)
	}
	if cap(c.buf) > 64<<10 {
		c.buf = nil // do not keep a large message's buffer
	}
	s.sent.Add(1)
	for {
		frame, err := c.r.ReadFrame()
		if err != nil {
			return ACK{}, s.ioError(ctx, "read", controlID, err, ctxFirst)
		}
		ack, err := ParseACK(frame)
		if err != nil {
			return ACK{}, s.newError("ack", controlID, err)
		}
		if ack.ControlID != controlID {
			s.strays.Add(1)
			continue
		}
		return ack, nil
	}
}

// ioError classifies an I/O error of an exchange. ctxFirst tells whether
// the connection's deadline was ctx's rather than AckTimeout's.
func (s *Sender) ioError(ctx context.Context, op, controlID string, err error, ctxFirst bool) *SendError {
	switch {
	case s.closing.Err() != nil:
		err = ErrClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded) && ctxFirst:
		// The deadline can pass a moment before ctx's own timer fires.
		err = context.DeadlineExceeded
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = ErrAckTimeout
	case err == io.EOF:
		err = fmt.Errorf("connection closed by the engine: %w", io.ErrUnexpectedEOF)
	}
	return s.newError(op, controlID, err)
}

// drop closes c and forgets it if it is still the current connection.
func (s *Sender) drop(c *mllpConn) {
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.mu.Unlock()
	c.nc.Close()
}

func (s *Sender) newError(op, controlID string, err error) *SendError {
	return &SendError{Op: op, Addr: s.cfg.Addr, ControlID: controlID, Err: err}
}

// Stats returns the Sender's counters.
func (s *Sender) Stats() Stats {
	st := Stats{
		Sends:     s.sends.Load(),
		Sent:      s.sent.Load(),
		Acked:     s.acked.Load(),
		Nacked:    s.nacked.Load(),
		Timeouts:  s.timeouts.Load(),
		Failed:    s.failed.Load(),
		Connects:  s.connects.Load(),
		StrayACKs: s.strays.Load(),
	}
	if st.Connects > 0 {
		st.Reconnects = st.Connects - 1
	}
	return st
}

// Close closes the connection. A Send in progress fails with ErrClosed, as
// does every later Send. Close is idempotent and always returns nil.
func (s *Sender) Close() error {
	s.mu.Lock()
	s.closed = true
	c := s.cur
	s.cur = nil
	s.mu.Unlock()
	s.stop()
	if c != nil {
		c.nc.Close()
	}
	return nil
}
