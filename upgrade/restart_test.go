package upgrade

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answer waits for the Restarter's next call to tableflip's Upgrade and
// answers it with err.
func answer(t *testing.T, f *fakeFlip, err error) {
	t.Helper()
	reply := <-f.upgrades
	reply <- err
}

func TestUpgradeRefusals(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, r *Restarter, f *fakeFlip)
		want    error
		wantMsg string
	}{
		{
			name:    "before ready",
			prepare: func(*testing.T, *Restarter, *fakeFlip) {},
			want:    ErrNotReady,
		},
		{
			name: "after a handoff",
			prepare: func(t *testing.T, r *Restarter, f *fakeFlip) {
				require.NoError(t, r.Ready())
				go answer(t, f, nil)
				require.NoError(t, r.Upgrade(t.Context()))
			},
			want: ErrDraining,
		},
		{
			name: "after stop",
			prepare: func(t *testing.T, r *Restarter, f *fakeFlip) {
				require.NoError(t, r.Ready())
				r.Stop()
			},
			want: ErrDraining,
		},
		{
			name: "while drain runs",
			prepare: func(t *testing.T, r *Restarter, f *fakeFlip) {
				require.NoError(t, r.Ready())
				require.NoError(t, r.Drain(t.Context()))
			},
			want: ErrDraining,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFlip()
			r, logs := testRestarter(t, f)
			tt.prepare(t, r, f)
			err := r.Upgrade(t.Context())
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, logs.String(), "upgrade: request refused")
		})
	}
}

func TestSecondUpgradeIsRefusedNotQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sig chan<- os.Signal
		f := newFakeFlip()
		r, logs := testRestarter(t, f, withSignalChan(&sig))
		require.NoError(t, r.Ready())

		sig <- syscall.SIGHUP
		reply := <-f.upgrades // the first attempt runs
		sig <- syscall.SIGHUP
		synctest.Wait()
		assert.Contains(t, logs.String(), `msg="upgrade: request refused" trigger="signal hangup" err="upgrade: an upgrade is in progress"`)
		err := r.Upgrade(t.Context())
		require.ErrorIs(t, err, ErrUpgradeInProgress)

		reply <- errors.New("child pid=42 exited: exit status 3")
		synctest.Wait()
		select {
		case <-f.upgrades:
			t.Fatal("a refused request was queued and ran later")
		default:
		}
		att, ok := r.LastAttempt()
		require.True(t, ok)
		assert.Equal(t, "signal hangup", att.Trigger)
		require.ErrorIs(t, att.Err, ErrChildFailed)
		assert.Equal(t, StateReady, r.State(), "the old process keeps serving")
		assert.Contains(t, logs.String(), "upgrade: new process failed; this process keeps serving")
	})
}

func TestFailedUpgradeKeepsServing(t *testing.T) {
	// The errors of tableflip v1.2.3's Upgrade, and what they become.
	tests := []struct {
		tableflip string
		want      error
	}{
		{"child pid=42 exited: exit status 3", ErrChildFailed},
		{"child pid=42 exited", ErrChildFailed},
		{"can't start child: can't start process /x: no such file or directory", ErrChildFailed},
		{"new child pid=42 timed out", ErrChildTimeout},
		{"something new", nil},
	}
	for _, tt := range tests {
		t.Run(tt.tableflip, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "svc.pid")
			f := newFakeFlip()
			r, _ := testRestarter(t, f, WithPIDFile(pidFile))
			require.NoError(t, r.Ready())
			go func() {
				reply := <-f.upgrades
				// The new process wrote the PID file, then died.
				if err := writePIDFile(pidFile, 42); err != nil {
					panic(err)
				}
				reply <- errors.New(tt.tableflip)
			}()
			start := time.Now()
			err := r.Upgrade(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.tableflip)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "upgrade: "), err.Error())

			assert.Equal(t, StateReady, r.State())
			att, ok := r.LastAttempt()
			require.True(t, ok)
			assert.Equal(t, "call", att.Trigger)
			assert.Equal(t, err, att.Err)
			assert.False(t, att.Started.Before(start.Truncate(time.Second)))
			assert.False(t, att.Finished.Before(att.Started))
			pid, rerr := readPIDFile(pidFile)
			require.NoError(t, rerr)
			assert.Equal(t, os.Getpid(), pid, "the PID file names the process that serves")
		})
	}
}

func TestDrainAbandonsUpgradeInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		r, logs := testRestarter(t, f)
		require.NoError(t, r.Ready())
		errc := make(chan error, 1)
		go func() { errc <- r.Upgrade(t.Context()) }()
		<-f.upgrades // the new process is starting: SIGTERM now
		require.NoError(t, r.Drain(t.Context()))
		err := <-errc
		require.ErrorIs(t, err, ErrDraining)
		synctest.Wait()
		assert.Contains(t, logs.String(), "upgrade: abandoned; this process drains")
		assert.NotContains(t, logs.String(), "keeps serving")
		att, _ := r.LastAttempt()
		require.ErrorIs(t, att.Err, ErrDraining)
	})
}

func TestTableflipRefusals(t *testing.T) {
	for _, tt := range []struct {
		tableflip string
		want      error
	}{
		{"upgrade in progress", ErrUpgradeInProgress},
		{"process is not ready yet", ErrNotReady},
	} {
		t.Run(tt.tableflip, func(t *testing.T) {
			f := newFakeFlip()
			r, logs := testRestarter(t, f)
			require.NoError(t, r.Ready())
			go answer(t, f, errors.New(tt.tableflip))
			require.ErrorIs(t, r.Upgrade(t.Context()), tt.want)
			assert.Contains(t, logs.String(), "upgrade: request refused")
			assert.NotContains(t, logs.String(), "keeps serving", "no new process was started")
			assert.Equal(t, StateReady, r.State())
		})
	}
}

// The Restarter may see the previous process exit a moment before
// tableflip does: it asks again.
func TestUpgradeRetriesWhileTableflipSeesParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		r, _ := testRestarter(t, f)
		require.NoError(t, r.Ready())
		go func() {
			answer(t, f, errors.New("parent hasn't exited"))
			answer(t, f, errors.New("parent hasn't exited"))
			answer(t, f, nil)
		}()
		start := time.Now()
		require.NoError(t, r.Upgrade(t.Context()))
		assert.Equal(t, 2*parentRetryPeriod, time.Since(start))
	})
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		r, _ := testRestarter(t, f)
		require.NoError(t, r.Ready())
		go func() {
			for range parentRetries + 1 {
				answer(t, f, errors.New("parent hasn't exited"))
			}
		}()
		err := r.Upgrade(t.Context())
		require.ErrorIs(t, err, ErrUpgradeInProgress)
		assert.Contains(t, err.Error(), "previous process still draining")
	})
}

func TestUpgradeWaitsForPreviousProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		f.hasParent = true
		r, logs := testRestarter(t, f)
		require.NoError(t, r.Ready())

		err := r.Upgrade(t.Context())
		require.ErrorIs(t, err, ErrUpgradeInProgress)
		assert.Contains(t, err.Error(), "previous process still draining")

		f.parentDone <- nil
		synctest.Wait()
		assert.Contains(t, logs.String(), "upgrade: previous process exited")
		go answer(t, f, nil)
		require.NoError(t, r.Upgrade(t.Context()))
	})
}

func TestUpgradeContextBoundsOnlyTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		r, _ := testRestarter(t, f)
		require.NoError(t, r.Ready())

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- r.Upgrade(ctx) }()
		reply := <-f.upgrades
		err := <-errc
		require.ErrorIs(t, err, context.DeadlineExceeded)

		att, ok := r.LastAttempt()
		require.True(t, ok)
		assert.True(t, att.Finished.IsZero(), "the attempt still runs")
		reply <- nil
		<-r.Exit()
		synctest.Wait()
		att, _ = r.LastAttempt()
		assert.NoError(t, att.Err)
		assert.Equal(t, time.Second, att.Finished.Sub(att.Started))
		assert.Equal(t, StateDraining, r.State())
	})
}

func TestReadyWritesPIDFileBeforeTellingParent(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "svc.pid")
	require.NoError(t, writePIDFile(pidFile, 42)) // the previous process
	f := newFakeFlip()
	f.hasParent = true
	var atReady int
	f.onReady = func() error {
		var err error
		atReady, err = readPIDFile(pidFile)
		return err
	}
	r, _ := testRestarter(t, f, WithPIDFile(pidFile))
	assert.Equal(t, StateStarting, r.State())
	require.NoError(t, r.Ready())
	assert.Equal(t, os.Getpid(), atReady)
	require.NoError(t, r.Ready(), "Ready twice is harmless")
	assert.Equal(t, StateReady, r.State())
}

// An upgrade asked for while Ready is under way (the PID file names this
// process, the previous one may already be gone: whoever watches those
// may ask at once) waits for Ready's end instead of being refused as not
// ready; one asked for while a Ready fails is refused as not ready; one
// whose ctx ends while it waits returns ctx's error and starts nothing.
func TestUpgradeDuringReady(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readyErr error
		cancel   bool  // the upgrade's ctx ends while Ready runs
		want     error // of the upgrade; nil: it starts a new process
	}{
		{"ready", nil, false, nil},
		{"ready fails", errors.New("no parent to tell"), false, ErrNotReady},
		{"given up", nil, true, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeFlip()
				entered, release := make(chan struct{}), make(chan struct{})
				f.onReady = func() error {
					close(entered)
					<-release
					return tc.readyErr
				}
				r, _ := testRestarter(t, f)
				readyErr := make(chan error, 1)
				go func() { readyErr <- r.Ready() }()
				<-entered
				upgraded := make(chan error, 1)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() { upgraded <- r.Upgrade(ctx) }()
				synctest.Wait()
				select {
				case err := <-upgraded:
					t.Fatalf("the upgrade was decided during Ready: %v", err)
				default:
				}
				if tc.cancel {
					cancel()
					require.ErrorIs(t, <-upgraded, context.Canceled)
				}
				close(release)
				require.ErrorIs(t, <-readyErr, tc.readyErr)
				if tc.cancel {
					synctest.Wait()
					select {
					case <-f.upgrades:
						t.Fatal("an upgrade given up started a new process")
					default:
					}
					return
				}
				if tc.want != nil {
					require.ErrorIs(t, <-upgraded, tc.want)
					return
				}
				reply := <-f.upgrades
				reply <- errors.New("the new process failed")
				err := <-upgraded
				require.ErrorContains(t, err, "the new process failed", "it started one")
				require.NotErrorIs(t, err, ErrNotReady)
			})
		})
	}
}

func TestStopRemovesOnlyItsOwnPIDFile(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "svc.pid")
		r, _ := testRestarter(t, newFakeFlip(), WithPIDFile(pidFile))
		require.NoError(t, r.Ready())
		r.Stop()
		assert.NoFileExists(t, pidFile)
	})
	t.Run("after handoff", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "svc.pid")
		f := newFakeFlip()
		r, _ := testRestarter(t, f, WithPIDFile(pidFile))
		require.NoError(t, r.Ready())
		go func() {
			reply := <-f.upgrades
			if err := writePIDFile(pidFile, 42); err != nil {
				panic(err)
			}
			reply <- nil
		}()
		require.NoError(t, r.Upgrade(t.Context()))
		r.Stop()
		pid, err := readPIDFile(pidFile)
		require.NoError(t, err)
		assert.Equal(t, 42, pid)
	})
}

func TestDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		r, logs := testRestarter(t, f, WithLameDuck(2*time.Second), WithDrainTimeout(5*time.Second))
		require.NoError(t, r.Ready())

		start := time.Now()
		var order []string
		hook := func(name string, err error) func(context.Context) error {
			return func(ctx context.Context) error {
				assert.Equal(t, 2*time.Second, time.Since(start), "hooks run after the lame-duck period")
				dl, ok := ctx.Deadline()
				assert.True(t, ok)
				assert.Equal(t, 7*time.Second, dl.Sub(start))
				order = append(order, name)
				return err
			}
		}
		errPlugin := errors.New("plugin: stop: exit status 1")
		r.OnDrain(hook("plugins", errPlugin))
		r.OnDrain(hook("rpc", nil))
		r.OnDrain(hook("http", nil))

		err := r.Drain(t.Context())
		require.ErrorIs(t, err, errPlugin)
		assert.Equal(t, []string{"http", "rpc", "plugins"}, order)
		assert.Equal(t, StateDraining, r.State())
		select {
		case <-r.Exit():
		default:
			t.Fatal("Exit is not closed after Drain")
		}
		require.ErrorIs(t, r.Drain(t.Context()), ErrDraining, "Drain runs once")
		assert.Contains(t, logs.String(), "upgrade: drained with errors")
	})
}

func TestDrainDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFlip()
		r, _ := testRestarter(t, f, WithDrainTimeout(3*time.Second))
		require.NoError(t, r.Ready())

		// The hook registered last runs first: it ignores ctx and holds the
		// drain past its deadline; the next one then runs with ctx done.
		later := make(chan error, 1)
		r.OnDrain(func(ctx context.Context) error {
			later <- ctx.Err()
			return ctx.Err()
		})
		release := make(chan struct{})
		r.OnDrain(func(ctx context.Context) error {
			<-release
			return nil
		})
		start := time.Now()
		err := r.Drain(t.Context())
		require.ErrorIs(t, err, ErrDrainTimeout)
		assert.Equal(t, 3*time.Second, time.Since(start))
		close(release)
		require.ErrorIs(t, <-later, context.DeadlineExceeded)
	})
}

func TestRun(t *testing.T) {
	t.Run("handoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeFlip()
			r, _ := testRestarter(t, f)
			require.NoError(t, r.Ready())
			drained := false
			r.OnDrain(func(context.Context) error { drained = true; return nil })
			done := make(chan error, 1)
			go func() { done <- r.Run(t.Context()) }()
			synctest.Wait()
			go answer(t, f, nil)
			require.NoError(t, r.Upgrade(t.Context()))
			require.NoError(t, <-done)
			assert.True(t, drained)
			assert.Equal(t, StateStopped, r.State())
		})
	})
	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeFlip()
			r, _ := testRestarter(t, f, WithDrainTimeout(time.Second))
			require.NoError(t, r.Ready())
			r.OnDrain(func(ctx context.Context) error {
				_, ok := ctx.Deadline()
				assert.True(t, ok, "the drain has its own deadline")
				return ctx.Err() // not cancelled with Run's ctx
			})
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			require.NoError(t, r.Run(ctx))
			assert.Equal(t, StateStopped, r.State())
		})
	})
}
