package mailman

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cacheVersion is the format of the cache file; a file of another
// version is not used.
const cacheVersion = 1

// cache is the cache file: the last set read from Mailman, so that after a
// restart with Mailman down its domains are known (and tempfail) and its
// lists are served. It holds no credentials.
type cache struct {
	Version int       `json:"listgate_mailman_cache"`
	URL     string    `json:"url"`     // the REST base, without credentials
	Fetched time.Time `json:"fetched"` // when Mailman answered
	Data
}

// readCache reads the cache file at path, written for the REST base url.
// A missing file is no cache (nil, nil); a file for another URL or
// version, or one that does not parse, is an error and not used.
func readCache(path, url string) (*cache, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeCache(b, url)
}

func decodeCache(b []byte, url string) (*cache, error) {
	var c cache
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not a listgate Mailman cache: %w", err)
	}
	switch {
	case c.Version != cacheVersion:
		return nil, fmt.Errorf("cache format %d, want %d", c.Version, cacheVersion)
	case c.URL != url:
		return nil, fmt.Errorf("written for %s, not %s", Redact(c.URL), url)
	}
	return &c, nil
}

// writeCache replaces the cache file at path with c atomically: a
// temporary file in the same directory, fsynced, renamed over it, and the
// directory fsynced, so that a crash leaves the old cache or the new one.
// The directory is made (mode 0750) if missing.
func writeCache(path string, c *cache) (err error) {
	c.Version = cacheVersion
	b, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+strings.TrimPrefix(filepath.Base(path), ".")+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
