package upgrade

// WithBeforeRename makes f run with the admin socket's temporary path just
// before ServeAdmin renames it to its public path.
func WithBeforeRename(f func(tmp string)) AdminOption {
	return func(c *adminConfig) { c.beforeRename = f }
}
