package flags

// SetAfterRead installs a test seam: f runs in each LoadFile (and Reload)
// after the file is read and parsed and before it is applied.
func SetAfterRead(s *Set, f func()) { s.afterRead = f }
