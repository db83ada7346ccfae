package bolt

// SetCheckpointAt makes checkpoints happen after n logged bytes; it returns the old setting.
func SetCheckpointAt(n int64) int64 {
	old := defaultCheckpointBytes
	defaultCheckpointBytes = n
	return old
}

// Abandon stops the store the way a crash would, as far as its files are concerned: no final
// checkpoint, no clean close. Acknowledged batches are in the log already.
func (d *DB) Abandon() {
	d.closeMu.Lock()
	d.closed = true
	d.abandoned = true // read by the commit loop only after done is closed
	d.closeMu.Unlock()
	close(d.done)
	d.wg.Wait()
	d.db.Close()
}

// FailAfterCheckpointCommit makes the next checkpoints stop, with err, between their file
// commit and the recycling of their segment, as a crash there would leave the files.
func FailAfterCheckpointCommit(err error) (restore func()) {
	hook := func() error { return err }
	afterCheckpointCommit.Store(&hook)
	return func() { afterCheckpointCommit.Store(nil) }
}

// OverlayVisits is how many overlay entries this store's scans have taken from its memtables.
func (d *DB) OverlayVisits() int64 { return d.scanVisits.Load() }

// BeforeScanBegin makes scans run fn between taking the overlay's view and beginning the file's
// read transaction, where a checkpoint can move the viewed memtable into the file.
func BeforeScanBegin(fn func()) (restore func()) {
	beforeScanBegin.Store(&fn)
	return func() { beforeScanBegin.Store(nil) }
}
