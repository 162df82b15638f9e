package upgrade

// JournalBeforeAppend makes f run, with the record's op, before h's journal
// writes each record.
func JournalBeforeAppend(h *ReleaseHandler, f func(op string)) { h.journal.beforeAppend = f }
