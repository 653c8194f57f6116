package lists

import (
	"os"
	"time"
)

// SetOpen makes o open list files and the lists directory with open
// instead of os.Open, so that a test can inject a fault (EMFILE, EIO).
func SetOpen(o *Options, open func(path string) (*os.File, error)) { o.open = open }

// SetRetry sets o's first and longest delay of the retries of failed
// reads (RetryMin, RetryMax outside tests).
func SetRetry(o *WatchOptions, first, longest time.Duration) { o.retryMin, o.retryMax = first, longest }
