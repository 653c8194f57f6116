package forward

import (
	"fmt"
	"time"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// FolderStatus is what `listgate spool` prints of one spool folder.
type FolderStatus struct {
	spool.Folder
	// NextHop is where the folder's mail goes: the next hop's string,
	// "none" when it stays in the Maildir, "(no list)" when the list is
	// not in the lists directory (its mail is held).
	NextHop string
	Backlog int       // messages in new/
	Oldest  time.Time // delivery time of the oldest one; zero if none
	// Quarantine holds the messages a next hop refused, oldest first.
	Quarantine []Quarantined
}

// Quarantined is one quarantined message and why.
type Quarantined struct {
	Name   string
	Reason Reason
}

// NoList names the next hop of a folder whose list is not in the lists
// directory: its mail is held until the list is back.
const NoList = "(no list)"

// Status reads every folder of the spool at root and says, with the lists
// of snap and the default next hop def, where its mail goes, how much
// waits and what is quarantined. It reads the spool only.
func Status(root string, snap *lists.Snapshot, def lists.NextHop) ([]FolderStatus, error) {
	if def.Transport == lists.Unset {
		def.Transport = lists.None
	}
	folders, err := spool.Folders(root)
	if err != nil {
		return nil, err
	}
	out := make([]FolderStatus, 0, len(folders))
	for _, fo := range folders {
		st := FolderStatus{Folder: fo, NextHop: NoList}
		if hop, _, ok := hopFor(snap, def, fo.List()); ok {
			st.NextHop = hop.String()
		}
		names, err := spool.Pending(fo.Path)
		if err != nil {
			return nil, err
		}
		st.Backlog = len(names)
		if len(names) > 0 {
			st.Oldest, _ = spool.NameTime(names[0])
		}
		q, err := spool.QuarantinedIn(fo.Path)
		if err != nil {
			return nil, err
		}
		for _, m := range q {
			st.Quarantine = append(st.Quarantine, Quarantined{Name: m.Name, Reason: ParseReason(m.Reason)})
		}
		out = append(out, st)
	}
	return out, nil
}

// Retry puts the quarantined messages of list (its canonical address), or
// of every list when list is "" or "all", back into new/ of their folders
// (spool.Release), where a running forwarder finds them at its next scan.
// It returns how many it moved; it stops at the first error.
func Retry(root, list string) (int, error) {
	folders, err := spool.Folders(root)
	if err != nil {
		return 0, err
	}
	n, found := 0, false
	for _, fo := range folders {
		if list != "" && list != "all" && fo.List() != list {
			continue
		}
		found = true
		q, err := spool.QuarantinedIn(fo.Path)
		if err != nil {
			return n, err
		}
		for _, m := range q {
			if err := spool.Release(fo.Path, m.Name); err != nil {
				return n, err
			}
			n++
		}
	}
	if !found && list != "" && list != "all" {
		return 0, fmt.Errorf("no folder of %s in the spool %s", list, root)
	}
	return n, nil
}
