package spool

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TmpGrace is how old a file in a folder's tmp/ must be before CleanTmp
// removes it: 36 hours, the Maildir convention (https://cr.yp.to/proto/maildir.html:
// a file in tmp/ untouched for 36 hours is a leftover; Dovecot deletes them
// on the same rule). A delivery in flight writes its file in tmp/ for a
// few seconds at most (the LMTP door's timeouts bound it to minutes), and
// nothing else of listgate uses tmp/ (the forwarder reads new/ and
// quarantine/), so a file this old is what a crash (SIGKILL, power loss)
// left between create and rename: never a message anyone was told was
// delivered, since a 250 comes only after the rename into new/.
const TmpGrace = 36 * time.Hour

// TmpCleanInterval is how often the daemon runs CleanTmp after the one at
// start.
const TmpCleanInterval = time.Hour

// CleanTmp removes the regular files in every folder's tmp/ (and the
// spill files, SpillPrefix, in the spool root) whose modification time
// is more than grace before now (Options.Now), and
// returns how many it removed. Newer files (a delivery in flight) and
// anything but regular files are left alone. It logs one info line with
// the count when it removed any, and a warning for each file it could not
// remove; it fails only when the spool itself cannot be listed.
func (s *Spool) CleanTmp(grace time.Duration) (int, error) {
	folders, err := Folders(s.dir)
	if err != nil {
		return 0, err
	}
	cutoff := s.now().Add(-grace)
	removed := 0
	for _, f := range folders {
		dir := filepath.Join(f.Path, "tmp")
		des, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.log.Warn("spool: cannot list tmp/", "file", dir, "err", unwrapOS(err))
			continue
		}
		for _, de := range des {
			if !de.Type().IsRegular() {
				continue
			}
			fi, err := de.Info()
			if err != nil || !fi.ModTime().Before(cutoff) {
				continue // gone meanwhile, or fresh
			}
			p := filepath.Join(dir, de.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("spool: cannot remove a stale file in tmp/", "file", p, "err", unwrapOS(err))
				continue
			}
			removed++
		}
	}
	// A spill file of a message being read is removed from the spool
	// root as soon as it is made: one still there was left by a crash.
	des, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("spool: cannot list the spool root", "file", s.dir, "err", unwrapOS(err))
	}
	for _, de := range des {
		if !de.Type().IsRegular() || !strings.HasPrefix(de.Name(), SpillPrefix) {
			continue
		}
		if fi, err := de.Info(); err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		p := filepath.Join(s.dir, de.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("spool: cannot remove a stale spill file", "file", p, "err", unwrapOS(err))
			continue
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("spool: removed stale files from tmp/", "count", removed, "older_than", grace.String())
	}
	return removed, nil
}

// CleanTmpEvery runs CleanTmp(grace) now and then every interval until ctx
// ends. An error (the spool cannot be listed) is logged and tried again
// at the next interval.
func (s *Spool) CleanTmpEvery(ctx context.Context, interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.CleanTmp(grace); err != nil {
			s.log.Error("spool: cleaning tmp/", "file", s.dir, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
