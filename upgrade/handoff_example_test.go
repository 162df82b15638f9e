package upgrade_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

// A service whose sessions, and their connections, move to the new process
// at each SIGHUP. Each connection has a session machine; its reader can be
// paused (a read deadline in the past wakes it) and gives back what it has
// read and not handled.
func ExampleNewHandoff() {
	session := fsm.Define("session", "v1", "open", 0) // ... its handlers
	r, err := upgrade.NewRestarter()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()
	sys := actor.NewSystem()
	h, err := upgrade.NewHandoff(r, sys, upgrade.WithCodes(session))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := r.Listen("tcp", ":7000")
	if err != nil {
		log.Fatal(err)
	}

	serve := func(key string, c net.Conn, unread []byte, ref actor.Ref) error {
		var (
			mu     sync.Mutex
			asked  chan []byte // by the Pause in progress
			resume = make(chan struct{})
			gone   = make(chan struct{})
		)
		go func() {
			defer close(gone)
			br := bufio.NewReader(io.MultiReader(bytes.NewReader(unread), c))
			partial := ""
			for {
				line, err := br.ReadString('\n')
				line, partial = partial+line, ""
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() { // Pause set a deadline
					partial = line
					mu.Lock()
					ack := asked
					if ack != nil { // not withdrawn: give back what is unhandled
						b, _ := br.Peek(br.Buffered())
						ack <- append([]byte(line), b...)
						asked = nil
					}
					mu.Unlock()
					if ack != nil {
						<-resume
					}
					continue
				}
				if err != nil {
					h.Release(key)
					_ = c.Close()
					return
				}
				_ = fsm.Cast(ref, line)
			}
		}()
		return h.Adopt(key, upgrade.Conn{
			Conn: c, Owner: key,
			Pause: func(ctx context.Context) ([]byte, error) {
				ack := make(chan []byte, 1)
				mu.Lock()
				asked = ack
				mu.Unlock()
				_ = c.SetReadDeadline(time.Unix(1, 0))
				select {
				case b := <-ack:
					return b, nil
				case <-gone: // it ended meanwhile
					return nil, net.ErrClosed
				case <-ctx.Done():
					// The handoff fails and does not resume this one:
					// withdraw, so that the reader reads on.
					mu.Lock()
					taken := asked == nil
					asked = nil
					mu.Unlock()
					_ = c.SetReadDeadline(time.Time{})
					if taken {
						resume <- struct{}{}
					}
					return nil, ctx.Err()
				}
			},
			Resume: func() { _ = c.SetReadDeadline(time.Time{}); resume <- struct{}{} },
		})
	}

	// Take over what the previous process had, before Ready.
	got, err := h.Receive(context.Background())
	if err != nil {
		log.Fatal(err) // exit without Ready: the previous process resumes
	}
	for key, rc := range got.Conns {
		if err := serve(key, rc.Conn, rc.Unread, got.Machines[rc.Owner]); err != nil {
			log.Fatal(err)
		}
	}
	if err := r.Ready(); err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			key := c.RemoteAddr().String()
			ref, err := fsm.Start(context.Background(), sys, session, fsm.WithID(key))
			if err == nil {
				err = h.Manage(key, ref)
			}
			if err == nil {
				err = serve(key, c, nil, ref)
			}
			if err != nil {
				_ = c.Close()
			}
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		log.Print(err)
	}
}

// A service whose versions come from a plugin directory and whose upgrades
// the release handler runs: the handoff takes each machine's code from the
// handler, and carries the handler's current and permanent versions and
// its rollback history to the new process, so that a rollback after a
// SIGHUP goes where it would have gone before it.
func ExampleWithReleaseHandler() {
	ctx := context.Background()
	r, err := upgrade.NewRestarter()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()
	sys := actor.NewSystem()
	rh, err := upgrade.NewReleaseHandler(sys)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = rh.Close(ctx) }()
	if _, err := rh.ScanPlugins(ctx, "bin/plugins"); err != nil {
		log.Fatal(err)
	}
	h, err := upgrade.NewHandoff(r, sys, upgrade.WithReleaseHandler(rh))
	if err != nil {
		log.Fatal(err)
	}
	// In a new process: the machines, restored on the version the old
	// process's handler had as current, and rh with its versions.
	got, err := h.Receive(ctx)
	if err != nil {
		log.Fatal(err) // no Ready: the old process resumes everything
	}
	for key, ref := range got.Machines {
		_, _ = key, ref // serve them, and their connections (got.Conns)
	}
	if err := r.Ready(); err != nil {
		log.Fatal(err)
	}
}
