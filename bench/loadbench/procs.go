package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// proc is a subprocess the harness started and must stop on every exit
// path.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// startProc starts cmd; with Pdeathsig (Linux) the kernel also kills it if
// loadbench itself dies without cleaning up.
func startProc(name string, cmd *exec.Cmd, deathSig syscall.Signal) (*proc, error) {
	setDeathSignal(cmd, deathSig)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then kills. It returns the exit error
// when the process ended on its own signal handling, nil for a clean exit.
func (p *proc) stop(sig os.Signal, grace time.Duration) error {
	if p.exited() {
		return p.err
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
	}
}

// sinkProc is a running sink subprocess.
type sinkProc struct {
	*proc
	sinkReady
	stdin io.Closer
}

// startSink re-executes loadbench as `loadbench <kind> args...` and waits
// for its ready line.
func startSink(ctx context.Context, kind string, args ...string) (*sinkProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{kind}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // closed by stop: the sink exits on EOF
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := startProc(kind, cmd, syscall.SIGKILL)
	if err != nil {
		return nil, err
	}
	s := &sinkProc{proc: p, stdin: stdin}
	line := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			line <- fmt.Errorf("%s exited before it was ready", kind)
			return
		}
		line <- json.Unmarshal(sc.Bytes(), &s.sinkReady)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-line:
	case <-time.After(15 * time.Second):
		err = fmt.Errorf("%s not ready after 15s", kind)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *sinkProc) stop() {
	s.stdin.Close()
	s.proc.stop(syscall.SIGKILL, 5*time.Second)
}

// stats fetches the sink's counts, and with a window its latencies.
func (s *sinkProc) stats(ctx context.Context, from, to time.Time) (sinkStats, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", strconv.FormatInt(from.UnixNano(), 10))
		q.Set("to", strconv.FormatInt(to.UnixNano(), 10))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Stats+"?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sinkStats{}, fmt.Errorf("%s stats: %w", s.name, err)
	}
	defer resp.Body.Close()
	var st sinkStats
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s stats: %s", s.name, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// cpuTicks returns a process's utime+stime in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return procCPU(b)
}

// statusKiB reads one kB-valued field of /proc/<pid>/status.
func statusKiB(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return procStatusKiB(b, key)
}

var errStopped = errors.New("interrupted")
