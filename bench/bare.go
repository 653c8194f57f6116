package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bareHeaders approximates the header lines a server adds to and
// smtp-source puts on each message (smtp-source -l counts the payload
// only), so that the bare loop writes files of about the servers' size.
const bareHeaders = 600

// bareLoop is the disk's own figure: c.sessions workers store msgs files
// in one Maildir-like folder with the system calls of a durable delivery
// and no protocol: create a file in tmp/, write it, fsync it, close it,
// rename it into new/, fsync new/. Each file is flushed alone, as a
// server that answers each message once its own file is safe would do.
// It runs in the bench's own process: no server CPU is reported.
func bareLoop(ctx context.Context, dir string, c benchCase, msgs int) (result, error) {
	tmp, newDir := filepath.Join(dir, "tmp"), filepath.Join(dir, "new")
	for _, d := range []string{tmp, newDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return result{}, err
		}
	}
	body := bytes.Repeat([]byte("x"), c.size+bareHeaders)
	syscall.Sync()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c.sessions)
	start := time.Now()
	for w := range c.sessions {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(msgs) || ctx.Err() != nil {
					return
				}
				name := fmt.Sprintf("%d.M%dW%d.bench", start.Unix(), i, w)
				if err := storeOne(tmp, newDir, name, body); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return result{}, fmt.Errorf("bare loop: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	n, err := countFiles(newDir)
	if err != nil {
		return result{}, err
	}
	if n != msgs {
		return result{}, fmt.Errorf("bare loop: %d files in %s after a run of %d", n, newDir, msgs)
	}
	if err := removeFiles(newDir); err != nil {
		return result{}, err
	}
	return result{msgs: msgs, elapsed: elapsed, cpu: -1}, nil
}

func storeOne(tmp, newDir, name string, body []byte) error {
	p := filepath.Join(tmp, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(p, filepath.Join(newDir, name)); err != nil {
		return err
	}
	d, err := os.Open(newDir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
