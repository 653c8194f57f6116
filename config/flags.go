package config

import (
	"errors"
	"flag"
	"io/fs"
	"strings"
)

// Flags are the command-line flags of a command: --config and one flag
// per setting the command uses. Flags given on the command line override
// the config file:
//
//	fset := flag.NewFlagSet("listgate check", flag.ContinueOnError)
//	cf := config.AddFlags(fset, "lists", "recipient_delimiter")
//	s, err := cf.Parse(args) // the file's settings, then the flags given
type Flags struct {
	fs          *flag.FlagSet
	file        string
	defaultFile string      // DefaultFile; tests point it elsewhere
	given       []flagValue // in command-line order: the last one wins
}

// flagValue is one setting's flag. Set only records the value: it is
// checked, with the flag's name, when it is applied over the file.
type flagValue struct {
	f     *Flags
	name  string // the key
	value string
}

func (v *flagValue) String() string {
	if v == nil || v.f == nil {
		return ""
	}
	k, _ := lookup(v.name)
	return k.def
}

// IsBoolFlag makes the flag of a boolean setting (--observe) take no
// value: "--observe" is "--observe=true".
func (v *flagValue) IsBoolFlag() bool { return v.name == "observe" }

func (v *flagValue) Set(s string) error {
	v.f.given = append(v.f.given, flagValue{name: v.name, value: s})
	return nil
}

// AddFlags registers --config and a flag for each of keys (names of the
// config file: "max_message_size" is --max-message-size) on fset. It
// panics on an unknown key, a wiring mistake.
func AddFlags(fset *flag.FlagSet, keys ...string) *Flags {
	f := &Flags{fs: fset, defaultFile: DefaultFile}
	fset.StringVar(&f.file, "config", "", "the config `file` (default "+DefaultFile+" if it exists)")
	for _, name := range keys {
		k, ok := lookup(name)
		if !ok {
			panic("config: AddFlags: unknown key " + name)
		}
		fset.Var(&flagValue{f: f, name: name}, strings.TrimPrefix(flagName(name), "--"), k.usage)
	}
	return f
}

// Parse parses args with the flag set and returns the merged settings:
// the built-in defaults, then the config file (--config FILE; otherwise
// DefaultFile if it exists), then every flag given. A flag error is the
// flag package's (it has printed it, with the usage); an invalid value is
// an *Error naming the flag or the file and line.
func (f *Flags) Parse(args []string) (Settings, error) {
	if err := f.fs.Parse(args); err != nil {
		return Settings{}, err
	}
	return f.Settings()
}

// Settings returns the merged settings of a flag set that has been
// parsed; Parse calls it.
func (f *Flags) Settings() (Settings, error) {
	s := Defaults()
	if f.file != "" {
		var err error
		if s, err = Load(f.file); err != nil {
			var e *Error
			if errors.Is(err, fs.ErrNotExist) && errors.As(err, &e) {
				return Settings{}, &Error{Key: "--config", Value: f.file, Err: e.Err}
			}
			return Settings{}, err
		}
	} else if ls, err := Load(f.defaultFile); err == nil {
		s = ls
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Settings{}, err
	}
	for _, g := range f.given {
		if err := s.set(g.name, g.value); err != nil {
			return Settings{}, &Error{Key: flagName(g.name), Value: shown(g.name, g.value), Err: err}
		}
		s.setOrigin(g.name, flagName(g.name))
	}
	return s, s.absPaths()
}
