package spool

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/lists"
)

// ErrBelowReserve is wrapped by Room's error when the spool's file system
// has less free space, or fewer free inodes, than the reserve keeps.
// IsNoSpace reports true for it: the LMTP door answers 452 4.3.1.
var ErrBelowReserve = errors.New("free space below the reserve")

// DefaultSpaceTTL is how long a reading of the file system's free space
// (statfs(2)) is reused when Options.SpaceTTL is zero: the check at RCPT
// costs one statfs per second at most, not one per recipient.
const DefaultSpaceTTL = time.Second

// Reserve is the part of the spool's file system that deliveries leave
// free (setting spool_reserve): when the free space, or the free inodes,
// would fall below it, the LMTP door answers a recipient 452 4.3.1 (RFC
// 3463 X.3.1, "mail system full") at RCPT, and Postfix keeps the message
// in its queue, as its own smtpd does below queue_minfree
// (postconf(5)). The zero Reserve keeps nothing free.
//
// The reserve in bytes is the larger of Bytes and Percent of the file
// system's size; the inode reserve is the same share of its inodes
// (5% of the space means 5% of the inodes too; 512 MiB of a 10 GiB file
// system means 5% of its inodes).
type Reserve struct {
	// Auto is the built-in default (spool_reserve = "auto"): Resolve
	// turns it into DefaultReserve. Bytes and Percent are then unused.
	Auto bool
	// Bytes is the free space to keep, in bytes.
	Bytes int64
	// Percent is the free space to keep, in percent of the file system's
	// size (f_blocks), and of its inodes (f_files); 0 to 100.
	Percent float64
}

// DefaultReserveMessages is how many messages of the largest size the
// default reserve keeps room for (see DefaultReserve).
const DefaultReserveMessages = 2

// DefaultReservePercent is the least share of the file system, in
// percent, that the default reserve keeps free.
const DefaultReservePercent = 1

// DefaultReserve is spool_reserve's default ("auto"): the larger of 1% of
// the file system and twice maxMessageSize, the largest message the LMTP
// door accepts (128 MiB for the default 64 MiB; lists.DefaultMaxMessageSize
// if maxMessageSize is not positive).
//
// Postfix's smtpd refuses MAIL FROM when the free space, less
// queue_minfree, is smaller than the announced size, or when the message
// would take half of what is free; postconf(5) asks for a queue_minfree of
// at least 1.5 times message_size_limit. The LMTP door already counts the
// announced SIZE= of each recipient's copy at RCPT, so the reserve is what
// is left over: room for the transactions that passed their RCPT on the
// same reading of the free space (DefaultSpaceTTL) and for the rest of the
// system. The 1% keeps a large file system from being run to its last
// block.
func DefaultReserve(maxMessageSize int64) Reserve {
	if maxMessageSize <= 0 {
		maxMessageSize = lists.DefaultMaxMessageSize
	}
	b := maxMessageSize
	if b > math.MaxInt64/DefaultReserveMessages {
		b = math.MaxInt64
	} else {
		b *= DefaultReserveMessages
	}
	return Reserve{Bytes: b, Percent: DefaultReservePercent}
}

// Resolve returns r, or DefaultReserve(maxMessageSize) if r is Auto.
func (r Reserve) Resolve(maxMessageSize int64) Reserve {
	if r.Auto {
		return DefaultReserve(maxMessageSize)
	}
	return r
}

// IsZero reports whether r keeps nothing free.
func (r Reserve) IsZero() bool { return !r.Auto && r.Bytes <= 0 && r.Percent <= 0 }

// String returns r as ParseReserve reads it: "auto", "0", "536870912" or
// "5%"; a reserve with both parts reads "1%,134217728" (the larger wins).
func (r Reserve) String() string {
	switch {
	case r.Auto:
		return "auto"
	case r.IsZero():
		return "0"
	case r.Percent <= 0:
		return strconv.FormatInt(r.Bytes, 10)
	case r.Bytes <= 0:
		return strconv.FormatFloat(r.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(r.Percent, 'f', -1, 64) + "%," + strconv.FormatInt(r.Bytes, 10)
}

// ParseReserve parses the value of spool_reserve: "auto" (the default,
// see DefaultReserve), a size in bytes as lists.ParseSize reads it
// ("512MiB", "1GB", "0" for no reserve), a percent of the file system
// ("5%", "0.5%"), or both separated by a comma ("1%,256MiB": the larger).
func ParseReserve(v string) (Reserve, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "auto") {
		return Reserve{Auto: true}, nil
	}
	var r Reserve
	parts := strings.Split(v, ",")
	if len(parts) > 2 {
		return Reserve{}, fmt.Errorf("invalid reserve %q: want a size (512MiB), a percent (5%%), both (1%%,256MiB) or auto", v)
	}
	var seenBytes, seenPercent bool
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if num, ok := strings.CutSuffix(p, "%"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || seenPercent || math.IsNaN(f) || f < 0 || f > 100 {
				return Reserve{}, fmt.Errorf("invalid reserve %q: want a percent from 0%% to 100%%", v)
			}
			r.Percent, seenPercent = f, true
			continue
		}
		n, err := lists.ParseSize(p)
		if err != nil || seenBytes {
			return Reserve{}, fmt.Errorf("invalid reserve %q: want a size (512MiB), a percent (5%%), both (1%%,256MiB) or auto", v)
		}
		r.Bytes, seenBytes = n, true
	}
	return r, nil
}

// Space is one reading of the spool's file system (statfs(2)).
type Space struct {
	// Free is the space available to an unprivileged user, in bytes
	// (f_bavail × f_bsize): the blocks the file system keeps for root
	// are not counted, whoever runs listgate.
	Free int64
	// Size is the file system's size in bytes (f_blocks × f_bsize).
	Size int64
	// FreeInodes is the number of free inodes (f_ffree; Linux's
	// f_favail is the same) and Inodes their total (f_files). A file
	// system that allocates inodes as it goes (btrfs) says 0 for both:
	// then there is no inode reserve.
	FreeInodes, Inodes int64
	// ReserveBytes and ReserveInodes are the reserve of Options.Reserve
	// on this file system (0 if none).
	ReserveBytes, ReserveInodes int64
	// At is when the reading was taken.
	At time.Time
}

// Below reports whether storing files more files of bytes bytes in all
// would leave less than the reserve free: free space or inodes.
func (sp Space) Below(bytes, files int64) bool {
	if bytes < 0 {
		bytes = 0
	}
	if sp.Free-sp.ReserveBytes < bytes || sp.Free < sp.ReserveBytes {
		return true
	}
	return sp.Inodes > 0 && (sp.FreeInodes-sp.ReserveInodes < files || sp.FreeInodes < sp.ReserveInodes)
}

// reserveFor returns the reserve r in bytes and inodes on a file system
// of size bytes and inodes inodes.
func reserveFor(r Reserve, size, inodes int64) (resBytes, resInodes int64) {
	if r.IsZero() || size <= 0 {
		return 0, 0
	}
	resBytes = max(r.Bytes, 0)
	if p := math.Ceil(float64(size) * r.Percent / 100); p > float64(resBytes) {
		resBytes = int64(min(p, float64(size)))
	}
	if inodes <= 0 {
		return resBytes, 0
	}
	// The same share of the inodes as of the space, rounded up:
	// ceil(min(resBytes, size) × inodes / size), exactly.
	hi, lo := bits.Mul64(uint64(min(resBytes, size)), uint64(inodes))
	q, rem := bits.Div64(hi, lo, uint64(size)) // hi < size: no overflow
	if rem != 0 {
		q++
	}
	return resBytes, int64(q)
}

// Statfs reads the file system holding path into a Space (without the
// reserve). Options.Statfs replaces it in tests.
func Statfs(path string) (Space, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return Space{}, fmt.Errorf("spool: statfs %s: %w", path, err)
	}
	bsize := int64(st.Bsize)
	return Space{
		Free:       satMul(int64(st.Bavail), bsize),
		Size:       satMul(int64(st.Blocks), bsize),
		FreeInodes: int64(st.Ffree),
		Inodes:     int64(st.Files),
	}, nil
}

// satMul multiplies two non-negative numbers, saturating at MaxInt64.
func satMul(a, b int64) int64 {
	if a < 0 || b < 0 {
		return 0
	}
	if b != 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// space caches the spool's readings of its file system.
type space struct {
	statfs  func(string) (Space, error)
	ttl     time.Duration
	reserve Reserve

	mu    sync.Mutex
	last  Space
	err   error
	valid bool // last (or err) is a reading to reuse until last.At+ttl
	below bool // the last reading was below the reserve: for the log on a change
}

// Space returns a reading of the spool's file system at most
// Options.SpaceTTL old (DefaultSpaceTTL), with the reserve filled in.
// Between readings, each delivery's file is taken off the free space and
// the free inodes, so the reading errs on the full side.
func (s *Spool) Space() (Space, error) {
	c := &s.space
	now := s.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && now.Sub(c.last.At) < c.ttl && !now.Before(c.last.At) {
		return c.last, c.err
	}
	sp, err := c.statfs(s.dir)
	if err != nil {
		if c.err == nil {
			s.log.Warn("cannot read the spool's free space; not checking the reserve", "file", s.dir, "err", err)
		}
		c.last, c.err, c.valid = Space{At: now}, err, true
		return c.last, err
	}
	sp.ReserveBytes, sp.ReserveInodes = reserveFor(c.reserve, sp.Size, sp.Inodes)
	sp.At = now
	below := !c.reserve.IsZero() && sp.Below(0, 0)
	switch {
	case below && !c.below:
		s.log.Warn("spool below its reserve: recipients get 452 4.3.1 until space is freed", "file", s.dir,
			"size_bytes", sp.Size, "free_bytes", sp.Free, "reserve_bytes", sp.ReserveBytes, "free_inodes", sp.FreeInodes, "reserve_inodes", sp.ReserveInodes)
	case !below && c.below:
		s.log.Info("spool above its reserve again: recipients are accepted", "file", s.dir,
			"free_bytes", sp.Free, "reserve_bytes", sp.ReserveBytes, "free_inodes", sp.FreeInodes, "reserve_inodes", sp.ReserveInodes)
	}
	c.last, c.err, c.valid, c.below = sp, nil, true, below
	return sp, nil
}

// Room returns nil if files more files of bytes bytes in all can be
// stored with the reserve (Options.Reserve) still free, and otherwise an
// error wrapping ErrBelowReserve (IsNoSpace reports true for it). The LMTP
// door asks it at each RCPT, with the SIZE= of MAIL FROM times the
// transaction's recipients so far; it costs a statfs(2) at most once per
// Options.SpaceTTL. With no reserve it always returns nil. If the free
// space cannot be read, Room returns nil: the delivery itself finds out
// whether the file system takes the message.
func (s *Spool) Room(bytes, files int64) error {
	if s.space.reserve.IsZero() {
		return nil
	}
	sp, err := s.Space()
	if err != nil || !sp.Below(bytes, files) {
		return nil
	}
	return fmt.Errorf("spool: %s: %d bytes and %d inodes free, %d bytes in %d files wanted, reserve %d bytes and %d inodes: %w",
		s.dir, sp.Free, sp.FreeInodes, bytes, files, sp.ReserveBytes, sp.ReserveInodes, ErrBelowReserve)
}

// used takes a delivered file of size bytes off the cached reading, or
// drops the reading after a failure for lack of space.
func (s *Spool) used(size int64, err error) {
	c := &s.space
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && IsNoSpace(err):
		c.valid = false
	case err == nil && c.valid && c.err == nil:
		c.last.Free -= size
		c.last.FreeInodes--
	}
}

// registerSpace registers the gauges of the spool's file system with reg.
func (s *Spool) registerSpace(reg prometheus.Registerer) {
	gauge := func(name, help string, f func(Space) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			sp, err := s.Space()
			if err != nil {
				return math.NaN()
			}
			return float64(f(sp))
		})
	}
	for _, c := range []prometheus.Collector{
		gauge("listgate_spool_free_bytes", "Space available to unprivileged users on the spool's file system, in bytes (statfs f_bavail × f_bsize).",
			func(sp Space) int64 { return sp.Free }),
		gauge("listgate_spool_free_inodes", "Free inodes on the spool's file system (statfs f_ffree; 0 where the file system has no fixed number).",
			func(sp Space) int64 { return sp.FreeInodes }),
		gauge("listgate_spool_reserve_bytes", "Free space the LMTP door keeps on the spool's file system (spool_reserve), in bytes; below it, recipients get 452 4.3.1.",
			func(sp Space) int64 { return sp.ReserveBytes }),
		gauge("listgate_spool_reserve_inodes", "Free inodes the LMTP door keeps on the spool's file system (spool_reserve); below them, recipients get 452 4.3.1.",
			func(sp Space) int64 { return sp.ReserveInodes }),
	} {
		if err := reg.Register(c); err != nil {
			s.log.Warn("spool metrics not registered", "err", err)
		}
	}
}
