// Command listgate lets Postfix host mailing-list addresses without ever
// accepting mail it cannot deliver: a milter refuses bogus list addresses
// at RCPT TO, and an LMTP sink stores accepted mail in a Maildir spool.
//
// Usage:
//
//	listgate serve [flags]          run every door (LMTP, milter, ...)
//	listgate check [flags] ADDR...  print the verdict for each address (--explain: step by step, every door)
//	listgate lists [flags]          print every list and every problem
//	listgate postfix [flags]        print Postfix settings (--postconf: as postconf -e commands; --check: judge main.cf)
//	listgate spool [retry] [flags]  print the forwarding backlog and quarantine; retry: send quarantined mail again
//	listgate version                print the version
//
// Every command reads its settings from /etc/listgate/listgate.toml (or
// --config FILE); flags override the file (docs/config.md). Run
// "listgate COMMAND -h" for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// exitUsage is the exit status for bad flags or arguments; exitRefused is
// `listgate check`'s status when an address is refused or not served.
const (
	exitRefused = 1
	exitUsage   = 2
)

// errUsage marks a usage error: the message is printed with a hint.
var errUsage = errors.New("usage")

// errFlagsPrinted is a usage error that the flag package has already
// printed, with the command's usage.
var errFlagsPrinted = errors.New("bad flags")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes a command line and returns the process exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	status := 0
	switch cmd {
	case "serve":
		err = serve(rest, stderr)
	case "check":
		status, err = check(rest, stdout, stderr)
	case "lists":
		status, err = listLists(rest, stdout, stderr)
	case "postfix":
		status, err = postfixCmd(rest, os.Stdin, stdout, stderr)
	case "spool":
		err = spoolCmd(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "-help", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "listgate: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlagsPrinted):
		return exitUsage
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "listgate %s: %v\n", cmd, err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "listgate %s: %v\n", cmd, err)
		return 1
	}
	return status
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: listgate COMMAND [flags]

commands:
  serve            run the LMTP sink, the milter and the other doors
  check ADDRESS... print the verdict for each address (exit 1 if any is refused; --explain: each step and every door's answer)
  lists            print every list, its addresses, and every problem (exit 1 if any)
  postfix          print Postfix settings (--postconf: postconf -e commands); --check judges Postfix's configuration
  spool [retry]    print each list's next hop, backlog and quarantine; retry [LIST|all] sends quarantined mail again
  version          print the version, the VCS revision and its commit time

Settings come from /etc/listgate/listgate.toml (or --config FILE); flags
override them. Run "listgate COMMAND -h" for a command's flags.
`)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("listgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and turns a flag error into a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagsPrinted // the flag package said what was wrong
	}
	return nil
}
