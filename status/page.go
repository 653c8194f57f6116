package status

import (
	"html/template"
	"strconv"
	"time"
)

// pageTemplate is the page. html/template escapes every value for where it
// appears (text, attribute, URL), so names and texts from list files stay
// text. Everything the page needs is in it: no script, no external asset.
var pageTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"n": thousands,
	"count": func(n int, noun string) string {
		if n == 1 {
			return "1 " + noun
		}
		return thousands(n) + " " + noun + "s"
	},
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	},
	"dur": func(d time.Duration) string { return d.String() },
	"add": func(xs ...int) int {
		sum := 0
		for _, x := range xs {
			sum += x
		}
		return sum
	},
}).Parse(pageHTML))

// thousands writes a count with thin separators: 100000 is "100,000".
// Counters are floats in Prometheus; they hold whole numbers here.
func thousands(v any) string {
	var s string
	switch x := v.(type) {
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', 0, 64)
	default:
		return "?"
	}
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>listgate on {{.Hostname}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 80em; padding: 0 1em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3em .6em; border-bottom: 1px solid #eee; overflow-wrap: break-word; }
td.mono, td .mono { overflow-wrap: anywhere; }
th { background: #f5f5f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .95em; }
.meta, .muted { color: #6e6e73; }
.small { font-size: .85em; }
.bad { color: #b00020; }
.ok { color: #1b7f3b; }
.zero { color: #aaa; }
.count { display: inline-block; margin: 0 1em .2em 0; white-space: nowrap; }
.problems td:first-child { white-space: nowrap; }
form { margin: .5em 0; }
input[type=search] { width: 22em; padding: .25em; }
.pager a { margin: 0 .5em; }
</style>
</head>
<body>
<header>
<h1>listgate on {{.Hostname}}</h1>
<p class="meta">{{if .Version}}{{.Version}} · {{end}}snapshot generation {{.Generation}} · {{count .Lists "list"}} in {{count .Domains "served domain"}} ·
{{if .ProblemsTotal}}<span class="bad">{{count .ProblemsTotal "problem"}}</span>{{else}}<span class="ok">no problems</span>{{end}} · as of {{time .Now}}</p>
{{- if .ReadyKnown}}
{{- if .NotReady}}
<div class="readiness bad"><b>Not ready</b> (<code>/readyz</code> answers 503):
<ul>{{range .NotReady}}<li>not ready: {{.}}</li>{{end}}</ul></div>
{{- else}}
<p class="readiness ok"><b>Ready</b> (<code>/readyz</code> answers 200)</p>
{{- end}}
{{- end}}
<nav><a href="#problems">Problems</a><a href="#lists">Lists</a><a href="#reloads">Reloads</a><a href="#doors">Verdicts</a><a href="#observe">Observe mode</a><a href="#forward">Forwarding</a></nav>
</header>

<h2 id="problems">Problems{{if .Query}} matching “{{.Query}}”{{end}}: {{n .ProblemsMatching}}</h2>
{{- if .Problems}}
<table class="problems">
<tr><th>file:line</th><th>problem</th></tr>
{{- range .Problems}}
<tr><td class="mono">{{.Where}}</td><td>{{.What}}</td></tr>
{{- end}}
</table>
{{- if .ProblemsNotShown}}
<p class="muted">{{count .ProblemsNotShown "more problem"}} not shown; <code>listgate lists</code> prints every one.</p>
{{- end}}
<p class="muted small">A list whose file has never parsed tempfails (451 4.3.0); one that parsed before keeps its last good settings.</p>
{{- else}}
<p class="ok">None.</p>
{{- end}}

<h2 id="lists">Lists</h2>
<form method="get" action="/">
<label>Filter <input type="search" name="q" value="{{.Query}}" placeholder="address, file, description"></label>
<button type="submit">Show</button>{{if .Query}} <a href="/">all lists</a>{{end}}
</form>
<p class="pager">
{{- if .Rows}}Showing {{n .From}}–{{n .To}} of {{if .Query}}{{count .Matching "list"}} matching “{{.Query}}” ({{n .Lists}} in all){{else}}{{count .Matching "list"}}{{end}}
{{- if .NotShown}}; {{n .NotShown}} not shown{{end}}.
{{- else if .Query}}No list matches “{{.Query}}” ({{n .Lists}} in all).
{{- else}}No lists.{{end}}
{{- if .Prev}} <a href="{{.Prev}}" rel="prev">← previous</a>{{end}}
{{- if .Next}} <a href="{{.Next}}" rel="next">next →</a>{{end}}
{{- if gt .Pages 1}} <span class="muted">page {{n .Page}} of {{n .Pages}}</span>{{end}}</p>
{{- if .Rows}}
<table class="lists">
<tr><th>posting address</th><th>also at</th><th>sub-addresses</th><th>next hop</th><th>file</th></tr>
{{- range .Rows}}
<tr><td><b class="mono">{{.Address}}</b>{{if .Description}}<br><span class="small">{{.Description}}</span>{{end}}{{if .MaxSize}}<br><span class="small muted">posts up to {{n .MaxSize}} bytes</span>{{end}}</td>
<td class="mono small">{{range $i, $a := .Also}}{{if $i}}<br>{{end}}{{$a}}{{else}}<span class="muted">—</span>{{end}}</td>
<td class="mono small">{{.Subaddresses}}</td>
<td class="mono small">{{.NextHop}}</td>
<td class="mono small">{{if .Mailman}}Mailman: {{end}}{{.File}}</td></tr>
{{- end}}
</table>
<p class="muted small">Each sub-address also answers with an extension (<code>+…</code>); <code>-subscribe</code> reaches <code>-join</code> and <code>-unsubscribe</code> <code>-leave</code>, at every address of the list.</p>
{{- end}}

<h2 id="reloads">Last reloads of the lists</h2>
{{- if .Reloads}}
<table class="reloads">
<tr><th>when</th><th>reason</th><th class="num">took</th><th class="num">generation</th><th class="num">lists</th><th class="num">problems</th><th>what changed</th></tr>
{{- range .Reloads}}
<tr><td>{{time .Time}} <span class="muted small">{{.Ago}}</span>{{if .Repeated}}<br><span class="muted small">and {{n .Repeated}} alike before</span>{{end}}</td>
<td>{{.Reason}}</td><td class="num">{{ms .Duration}}</td>
{{- if .Err}}
<td colspan="4" class="bad">failed, the last snapshot stays: {{.Err}}</td>
{{- else}}
<td class="num">{{.Generation}}</td><td class="num">{{n .Lists}}</td><td class="num">{{n .Problems}}</td>
<td>{{if or .Added .Changed .Removed}}{{if .Added}}{{n .Added}} added {{end}}{{if .Changed}}{{n .Changed}} changed {{end}}{{if .Removed}}{{n .Removed}} removed{{end}}
<br><span class="mono small">{{range $i, $c := .Changes}}{{if $i}}, {{end}}{{$c.Name}} ({{$c.What}}){{end}}{{$named := len .Changes}}{{if gt (add .Added .Changed .Removed) $named}}, …{{end}}</span>
{{- else}}<span class="muted">nothing</span>{{end}}</td>
{{- end}}</tr>
{{- end}}
</table>
{{- else if .ReloadsKnown}}
<p class="muted">None yet.</p>
{{- else}}
<p class="muted">Not recorded.</p>
{{- end}}

<h2 id="doors">Verdicts by door, since the start</h2>
{{- if .Doors}}
<table class="doors">
<tr><th>door</th><th class="num">total</th><th>by verdict</th></tr>
{{- range .Doors}}
<tr><td>{{.Door}} <span class="muted small">{{.What}}</span></td><td class="num">{{n .Total}}</td>
<td>{{range .Counts}}<span class="count{{if not .Value}} zero{{end}}">{{.Label}} <b>{{n .Value}}</b></span>{{end}}</td></tr>
{{- end}}
</table>
{{- else}}
<p class="muted">No door counts yet.</p>
{{- end}}

<h2 id="observe">Observe mode</h2>
{{- if .Observe}}
<table class="observe">
<tr><th>domain</th><th>mode</th><th class="num">would refuse</th><th>by door</th></tr>
{{- range .Observe}}
<tr><td class="mono">{{.Domain}}{{range .Aliases}}<br><span class="small muted">alias {{.}}</span>{{end}}</td>
<td>{{if eq .Mode "observe"}}<b>observe</b>{{else}}enforce{{end}}{{if .Where}}<br><span class="mono small muted">{{.Where}}</span>{{end}}</td>
<td class="num">{{n .Total}}</td>
<td>{{range .Counts}}<span class="count{{if not .Value}} zero{{end}}">{{.Label}} <b>{{n .Value}}</b></span>{{else}}<span class="muted">—</span>{{end}}</td></tr>
{{- end}}
</table>
<p class="muted small">In observe mode the doors at <code>RCPT TO</code> let an address no list has through, and count it (<code>listgate_would_refuse_total</code>, since the start); the LMTP door still refuses it. <code>mode = "enforce"</code> in the domain file refuses it at once.</p>
{{- else}}
<p class="muted">No domain is in observe mode: every served domain refuses unknown addresses.</p>
{{- end}}

<h2 id="forward">Forwarding to next hops</h2>
{{- if .Hops}}
<table class="forward">
<tr><th>next hop</th><th class="num">waiting</th><th class="num">oldest</th><th class="num">quarantined</th><th>failing for</th><th class="num">forwarded</th><th class="num">deferred</th><th class="num">refused</th></tr>
{{- range .Hops}}
<tr><td class="mono">{{.NextHop}}</td><td class="num">{{n .Backlog}}</td><td class="num">{{if .Backlog}}{{dur .Oldest}}{{else}}—{{end}}</td>
<td class="num{{if .Quarantined}} bad{{end}}">{{n .Quarantined}}</td>
<td>{{if .Failing}}<span class="bad">{{dur .Failing}}</span>{{else}}<span class="ok">not failing</span>{{end}}</td>
<td class="num">{{n .Forwarded}}</td><td class="num">{{n .Deferred}}</td><td class="num">{{n .Quarantines}}</td></tr>
{{- end}}
</table>
<p class="muted small">Waiting: in <code>new/</code> of the lists' spool folders. Quarantined: refused for good by the next hop; <code>listgate spool</code> lists them, <code>listgate spool retry LIST</code> sends them again. Forwarded, deferred (a temporary failure) and refused count the attempts since the start.</p>
{{- else}}
<p class="muted">Nothing waits for a next hop, and nothing has been forwarded since the start (a list without a next hop keeps its mail in the spool).</p>
{{- end}}
</body>
</html>
`
