package spool

import "sync"

// dirFlushes shares directory flushes between deliveries that happen at
// the same time (group commit, as databases share a log flush between
// transactions). A delivery that has renamed its file into a directory
// joins the directory's next flush: one that has not started yet, so it
// is certain to come after the rename. If no flush of the directory is
// running, the delivery runs that flush itself; if one is running, the
// delivery waits for it to end and then either finds its own flush done
// by another delivery or runs it. Every delivery whose rename came before
// a flush started gets that flush's result, and no delivery returns
// before a flush that started after its rename has ended: each 250 still
// stands on a flushed directory entry.
//
// With N sessions delivering into one folder, a directory takes one flush
// for every batch of renames that arrived while the previous flush ran,
// instead of one per message.
type dirFlushes struct {
	mu   sync.Mutex
	dirs map[string]*dirFlush // entries exist while a delivery uses them
}

// dirFlush is the state of one directory's flushes.
type dirFlush struct {
	cond    sync.Cond  // L is &dirFlushes.mu
	next    *flushWait // the flush not yet started that deliveries join
	running bool       // a flush of the directory is under way
	users   int        // deliveries in flush for this directory
}

// flushWait is one flush of a directory and the deliveries waiting on it.
type flushWait struct {
	done bool
	err  error
}

// flush returns once a run of fn (which flushes dir) that started after
// the call has ended, with that run's error. Concurrent calls for the same
// dir share runs of fn; calls for different directories do not wait on
// each other.
func (g *dirFlushes) flush(dir string, fn func() error) error {
	g.mu.Lock()
	if g.dirs == nil {
		g.dirs = make(map[string]*dirFlush)
	}
	d := g.dirs[dir]
	if d == nil {
		d = &dirFlush{}
		d.cond.L = &g.mu
		g.dirs[dir] = d
	}
	d.users++
	if d.next == nil {
		d.next = &flushWait{}
	}
	w := d.next
	for !w.done {
		if d.running || d.next != w {
			d.cond.Wait()
			continue
		}
		// w has not started and nothing runs: run it for everyone in it.
		d.running, d.next = true, nil
		g.mu.Unlock()
		err := fn()
		g.mu.Lock()
		w.done, w.err, d.running = true, err, false
		d.cond.Broadcast()
	}
	d.users--
	if d.users == 0 {
		delete(g.dirs, dir)
	}
	err := w.err
	g.mu.Unlock()
	return err
}
