//go:build unix

package readme_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// section is the part of README.md under one heading, up to the next
// heading of any level.
type section struct {
	path   []string // heading titles from the top: "ssechat", "Many instances", ...
	prose  string   // its lines outside fenced blocks
	blocks []block  // its fenced code blocks, in order
}

// block is a fenced code block.
type block struct {
	lang string // the info string: "sh", or "" for sample output
	text string
	line int // of the opening fence, 1-based
}

var headingLine = regexp.MustCompile("^(#{1,6})[ \t]+(.*?)[ \t#]*$")

// parseMarkdown splits a document into sections. It knows what the README
// uses: ATX headings and fenced blocks (``` or ~~~, three or more).
func parseMarkdown(doc string) []section {
	var (
		out   []section
		path  []string
		cur   *section
		fence string // the open fence, "" outside a block
		open  *block
		prose strings.Builder
		body  strings.Builder
	)
	flush := func() {
		if cur != nil {
			cur.prose = prose.String()
			out = append(out, *cur)
		}
		prose.Reset()
	}
	cur = &section{}
	for i, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				open.text = body.String()
				cur.blocks = append(cur.blocks, *open)
				fence, open = "", nil
				continue
			}
			body.WriteString(line + "\n")
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			n := len(trimmed) - len(strings.TrimLeft(trimmed, trimmed[:1]))
			fence = trimmed[:n]
			open = &block{lang: strings.TrimSpace(trimmed[n:]), line: i + 1}
			body.Reset()
		default:
			if m := headingLine.FindStringSubmatch(line); m != nil {
				flush()
				level := len(m[1])
				path = append(path[:min(level-1, len(path))], m[2])
				cur = &section{path: slices.Clone(path)}
				continue
			}
			prose.WriteString(line + "\n")
		}
	}
	flush()
	return out
}

// readme parses the repository's README.md.
func readme(t testing.TB) []section {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return parseMarkdown(string(b))
}

// findSection returns the section whose heading path ends with titles
// ("Many instances", "A cluster in one command"); exactly one must.
func findSection(t testing.TB, doc []section, titles ...string) section {
	t.Helper()
	var found []section
	for _, s := range doc {
		if len(s.path) >= len(titles) && slices.Equal(s.path[len(s.path)-len(titles):], titles) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md: %d sections under %q, want 1", len(found), strings.Join(titles, " → "))
	}
	return found[0]
}

// codeBlocks returns the section's blocks whose info string is lang.
func (s section) codeBlocks(lang string) []block {
	var out []block
	for _, b := range s.blocks {
		if b.lang == lang {
			out = append(out, b)
		}
	}
	return out
}

// onlyBlock returns the section's one block of lang.
func (s section) onlyBlock(t testing.TB, lang string) block {
	t.Helper()
	bs := s.codeBlocks(lang)
	if len(bs) != 1 {
		t.Fatalf("README.md %q: %d ```%s blocks, want 1", s.path[len(s.path)-1], len(bs), lang)
	}
	return bs[0]
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// codeSpans lists the inline code of the section's prose. A span may wrap
// across lines; as in CommonMark, the line break counts as a space.
func (s section) codeSpans() []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(strings.ReplaceAll(s.prose, "\n", " "), -1) {
		out = append(out, m[1])
	}
	return out
}

// codeSpan returns the one inline code span that starts with prefix.
func (s section) codeSpan(t testing.TB, prefix string) string {
	t.Helper()
	var found []string
	for _, c := range s.codeSpans() {
		if strings.HasPrefix(c, prefix) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md %q: %d inline commands starting %q, want 1: %q", s.path[len(s.path)-1], len(found), prefix, found)
	}
	return found[0]
}

var terminalHeader = regexp.MustCompile(`^# Terminal (\d+):`)

// terminals splits a shell block at its "# Terminal N: ..." comments into
// the commands typed in each terminal (the comments kept).
func terminals(t testing.TB, b block) map[int]string {
	t.Helper()
	out := make(map[int]string)
	n := 0
	for line := range strings.Lines(b.text) {
		if m := terminalHeader.FindStringSubmatch(line); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if n == 0 {
			if strings.TrimSpace(line) != "" {
				t.Fatalf("README.md line %d: a command before any \"# Terminal N:\": %q", b.line, line)
			}
			continue
		}
		out[n] += line
	}
	return out
}

// commandLines lists a script's lines that are neither blank nor comments.
func commandLines(script string) []string {
	var out []string
	for line := range strings.Lines(script) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// replace replaces every old with new in script, and fails the test when
// there is none: a substitution that no longer applies means the README
// changed under the test.
func replace(t testing.TB, script, old, new string) string {
	t.Helper()
	if !strings.Contains(script, old) {
		t.Fatalf("README command no longer contains %q, which the test replaces with %q:\n%s", old, new, script)
	}
	return strings.ReplaceAll(script, old, new)
}

// saveVar inserts, after the command of script that assigns name (with
// its continuation lines), one line that saves the variable to file, so
// that a later command of the same terminal can run in a new shell:
// terminal 1's stream never ends by itself. It changes nothing the
// README's commands do.
func saveVar(t testing.TB, script, name, file string) string {
	t.Helper()
	lines := strings.SplitAfter(script, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, name+"=") {
			continue
		}
		for i < len(lines) && strings.HasSuffix(strings.TrimRight(lines[i], "\n"), `\`) {
			i++
		}
		save := "declare -p " + name + " >" + shellQuote(file) + "\n"
		return strings.Join(slices.Insert(lines, i+1, save), "")
	}
	t.Fatalf("no command assigns %s in:\n%s", name, script)
	return ""
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TestReadmeWalkthroughsParse checks, without starting anything, that the
// README still has what the other tests run: the sections, their shell
// blocks split into terminals, the sample output and the inline commands.
// It runs where the cluster test skips.
func TestReadmeWalkthroughsParse(t *testing.T) {
	doc := readme(t)

	chat := findSection(t, doc, "Chat from a terminal")
	terms := terminals(t, chat.onlyBlock(t, "sh"))
	if len(terms) != 2 {
		t.Errorf("Chat from a terminal: terminals %v, want 1 and 2", slices.Sorted(maps.Keys(terms)))
	}
	if len(chat.codeBlocks("")) != 1 {
		t.Errorf("Chat from a terminal: %d sample output blocks, want 1", len(chat.codeBlocks("")))
	}
	chat.codeSpan(t, "curl -N ")

	one := findSection(t, doc, "Many instances", "A cluster in one command")
	if lines := commandLines(one.onlyBlock(t, "sh").text); len(lines) == 0 || !strings.HasPrefix(lines[0], "deploy/cluster.sh ") {
		t.Errorf("A cluster in one command: first command %q, want deploy/cluster.sh", lines)
	}
	kill := findSection(t, doc, "Many instances", "Chat through nginx while killing instances")
	terms = terminals(t, kill.onlyBlock(t, "sh"))
	if len(terms) != 3 {
		t.Errorf("Chat through nginx: terminals %v, want 1, 2 and 3", slices.Sorted(maps.Keys(terms)))
	}
	kill.codeSpan(t, "curl -s localhost:8080/api/rooms/lobby/members ")
	kill.codeSpan(t, "curl -s -XPOST localhost:8080/api/logout ")
}
