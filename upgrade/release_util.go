package upgrade

import (
	"errors"
	"log/slog"

	"github.com/hotline-go/hotline/actor"
)

func isNoProc(err error) bool { return errors.Is(err, actor.ErrNoProc) }

func joinErrs(errs []error) error { return errors.Join(errs...) }

func slogLevel(result string) slog.Level {
	switch result {
	case "ok":
		return slog.LevelInfo
	case "refused":
		return slog.LevelWarn
	}
	return slog.LevelError
}
