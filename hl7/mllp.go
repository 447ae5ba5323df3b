package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MLLP block characters (HL7 Implementation Guide, Appendix C, MLLP
// Release 1): a block is StartBlock, the message, EndBlock, CR.
const (
	StartBlock = 0x0B // vertical tab
	EndBlock   = 0x1C // file separator
)

// DefaultMaxFrameSize is the largest message a Reader accepts unless told
// otherwise: 1 MiB.
const DefaultMaxFrameSize = 1 << 20

var (
	// ErrFrameTooLarge is returned by Reader.ReadFrame when a message is
	// longer than the Reader's maximum.
	ErrFrameTooLarge = errors.New("hl7: MLLP frame larger than the maximum size")
	// ErrMalformedFrame is returned by Reader.ReadFrame when the stream does
	// not follow the MLLP block format.
	ErrMalformedFrame = errors.New("hl7: malformed MLLP frame")
)

// AppendFrame appends msg wrapped in an MLLP block (0x0B msg 0x1C 0x0D) to
// dst. msg must not contain 0x0B or 0x1C; messages from ORU.Append and
// NewACK never do, since control characters in values are escaped.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, StartBlock)
	dst = append(dst, msg...)
	return append(dst, EndBlock, '\r')
}

// Reader reads MLLP blocks from a byte stream. It is not safe for concurrent
// use.
//
// Between blocks it skips CR, LF, space and tab, which some senders add
// after a block; any other byte before a start block is an error
// (ErrMalformedFrame) rather than being skipped, because it means sender and
// receiver disagree about where messages begin, and the right response is to
// close the connection. A start block inside a message, and an end block
// not followed by CR, are errors too.
//
// Framing errors, ErrFrameTooLarge and errors that happen in the middle of a
// block are sticky: every later ReadFrame returns the same error, because the
// stream position is lost. An error before the first byte of a block (for
// example a read deadline on an idle connection, or io.EOF when the peer
// closes between messages) is returned as it is and the Reader stays usable.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
	err error
}

// NewReader returns a Reader that reads from r and accepts messages of at
// most maxSize bytes (the content between the block characters). A maxSize
// of zero or less means DefaultMaxFrameSize. If r is a *bufio.Reader it is
// used directly.
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &Reader{r: br, max: maxSize}
}

// ReadFrame returns the next message without its block characters. The
// returned slice is reused by the next call to ReadFrame; copy it to keep it.
// At the end of the stream between blocks it returns io.EOF; if the stream
// ends inside a block it returns an error wrapping io.ErrUnexpectedEOF.
func (r *Reader) ReadFrame() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	frame, started, err := r.readFrame()
	if err != nil && started {
		r.err = err
	}
	return frame, err
}

func (r *Reader) readFrame() (frame []byte, started bool, err error) {
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, false, io.EOF
			}
			return nil, false, fmt.Errorf("hl7: reading MLLP frame: %w", err)
		}
		if c == StartBlock {
			break
		}
		switch c {
		case '\r', '\n', ' ', '\t':
			continue
		}
		return nil, true, fmt.Errorf("%w: byte 0x%02X before the start block", ErrMalformedFrame, c)
	}

	r.buf = r.buf[:0]
	for {
		chunk, err := r.r.ReadSlice(EndBlock)
		data := chunk
		if err == nil {
			data = chunk[:len(chunk)-1]
		}
		if bytes.IndexByte(data, StartBlock) >= 0 {
			return nil, true, fmt.Errorf("%w: start block inside a message", ErrMalformedFrame)
		}
		if len(r.buf)+len(data) > r.max {
			return nil, true, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, r.max)
		}
		r.buf = append(r.buf, data...)
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, true, fmt.Errorf("hl7: reading MLLP frame: no end block: %w", io.ErrUnexpectedEOF)
		default:
			return nil, true, fmt.Errorf("hl7: reading MLLP frame: %w", err)
		}
		break
	}

	c, err := r.r.ReadByte()
	switch {
	case errors.Is(err, io.EOF):
		return nil, true, fmt.Errorf("hl7: reading MLLP frame: no CR after the end block: %w", io.ErrUnexpectedEOF)
	case err != nil:
		return nil, true, fmt.Errorf("hl7: reading MLLP frame: %w", err)
	case c != '\r':
		return nil, true, fmt.Errorf("%w: byte 0x%02X after the end block instead of CR", ErrMalformedFrame, c)
	}
	return r.buf, true, nil
}
