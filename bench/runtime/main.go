// Command runtime-bench times berth-runtime against runc and crun on one
// bundle, interleaved, and prints medians, ratios and whether berth meets its
// targets. It is started by run.sh, which builds the bundle and puts this
// program in a private mount namespace without /sys/fs/cgroup/unified; run
// that, not this, by hand.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// rt is one runtime under test.
type rt struct {
	Name  string // short name: berth, runc, crun
	Path  string
	State string // private --root
}

// sample is one timed iteration of one runtime.
type sample struct {
	runMs, deleteMs float64
	maxRSSKB        int64 // GNU time's %M of the run (RSS pass only)
	// runExit is the exit status of a `run` that failed without printing
	// anything (the container itself is `true`, so that is the runtime
	// failing late, after the container ran); 0 otherwise.
	runExit int
}

type rtResult struct {
	Path        string  `json:"path"`
	Samples     int     `json:"samples"` // timed iterations done (N unless interrupted)
	Version     string  `json:"version"`
	RunMs       summary `json:"run_ms"`
	DeleteMs    summary `json:"delete_ms"`
	RunDeleteMs summary `json:"run_delete_ms"`
	MaxRSSKB    summary `json:"max_rss_kb"`       // GNU time %M of `run`
	LeftCgroups int     `json:"leftover_cgroups"` // leaf cgroups still present after delete
	// StrayDirs counts leaf directories the runtime made under a path that is
	// not a cgroup filesystem (/sys/fs/cgroup/unified, unmounted here, is a
	// plain tmpfs directory), still present after delete.
	StrayDirs int `json:"stray_dirs"`
	// SilentRunFailures counts timed `run`s that exited non-zero with nothing
	// on stderr; their samples are kept (the container did run). By exit code.
	SilentRunFailures map[string]int `json:"silent_run_failures,omitempty"`
}

type target struct {
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	Ratio  float64 `json:"ratio"`
	Limit  float64 `json:"limit"`
	Met    bool    `json:"met"`
}

type report struct {
	Bench     string               `json:"bench"`
	Time      string               `json:"time"`
	Host      map[string]string    `json:"host"`
	N         int                  `json:"n"`
	Warmup    int                  `json:"warmup"`
	RSSN      int                  `json:"rss_n"`
	Runtimes  map[string]*rtResult `json:"runtimes"`
	Ratios    map[string]float64   `json:"ratios"`
	Targets   []target             `json:"targets"`
	Clone     *cloneResult         `json:"clone,omitempty"`
	AllMet    bool                 `json:"all_targets_met"`
	Interrupt bool                 `json:"interrupted,omitempty"`
}

type rtFlags []rt

func (f *rtFlags) String() string { return fmt.Sprint(*f) }
func (f *rtFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want NAME=PATH, got %q", v)
	}
	*f = append(*f, rt{Name: name, Path: path})
	return nil
}

type bench struct {
	ctx          context.Context
	bundle       string
	template     map[string]any
	cgroupParent string
	timeBin      string
	devnull      *os.File
	errFile      *os.File
}

func main() {
	var (
		rts          rtFlags
		bundle       = flag.String("bundle", "", "OCI bundle; its config.json is rewritten per run")
		templatePath = flag.String("template", "", "config.json template (only linux.cgroupsPath is changed per run)")
		stateDir     = flag.String("state", "", "directory for each runtime's private --root")
		n            = flag.Int("n", 50, "timed iterations per runtime")
		warmup       = flag.Int("warmup", 3, "discarded warm-up iterations per runtime")
		rssN         = flag.Int("rss-n", 10, "extra runs per runtime under GNU time for max RSS")
		timeBin      = flag.String("time", "/usr/bin/time", "GNU time")
		cgroupParent = flag.String("cgroup-parent", "/berth-bench", "absolute cgroup under which every container goes")
		cloneBin     = flag.String("clone-bin", "", "binary for the memfd clone measurement (empty: skip)")
		cloneN       = flag.Int("clone-n", 200, "clone measurement repetitions")
		jsonOut      = flag.String("json-out", "", "also write the JSON report here")
		base         = flag.String("base", "berth", "runtime whose ratios and targets are reported")
	)
	flag.Var(&rts, "runtime", "NAME=PATH of a runtime (repeat; order is the round-robin order)")
	flag.Parse()
	if len(rts) == 0 || *bundle == "" || *templatePath == "" || *stateDir == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: runtime-bench -runtime NAME=PATH... -bundle DIR -template FILE -state DIR [-n N]; start it through run.sh")
		os.Exit(2)
	}
	if err := checkNamespace(); err != nil {
		fmt.Fprintln(os.Stderr, "runtime-bench:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	raw, err := os.ReadFile(*templatePath)
	must(err)
	b := &bench{ctx: ctx, bundle: *bundle, cgroupParent: *cgroupParent, timeBin: *timeBin}
	must(json.Unmarshal(raw, &b.template))
	b.devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
	must(err)
	b.errFile, err = os.CreateTemp(*stateDir, "stderr.")
	must(err)
	defer os.Remove(b.errFile.Name())

	for i := range rts {
		rts[i].State = filepath.Join(*stateDir, rts[i].Name)
		must(os.MkdirAll(rts[i].State, 0o700))
	}

	rep := &report{
		Bench: "runtime", Time: time.Now().UTC().Format(time.RFC3339),
		Host: hostInfo(*stateDir), N: *n, Warmup: *warmup, RSSN: *rssN,
		Runtimes: map[string]*rtResult{}, Ratios: map[string]float64{},
	}
	samples := map[string][]sample{}
	for _, r := range rts {
		rep.Runtimes[r.Name] = &rtResult{Path: r.Path, Version: version(r.Path)}
	}

	fmt.Fprintf(os.Stderr, "runtime-bench: %d warm-up + %d timed iterations, round-robin over %s\n", *warmup, *n, names(rts))
	// Round-robin: every iteration runs each runtime once, and the starting
	// runtime rotates so none is always first after the previous one's
	// teardown.
	var runErr error
loop:
	for it := -*warmup; it < *n; it++ {
		for k := range rts {
			r := rts[(k+it+*warmup)%len(rts)]
			id := fmt.Sprintf("%s-%d", r.Name, it)
			if it < 0 {
				id = fmt.Sprintf("%s-w%d", r.Name, -it)
			}
			s, err := b.iteration(r, id, false)
			if err != nil {
				runErr = fmt.Errorf("%s iteration %d: %w", r.Name, it, err)
				break loop
			}
			b.countLeftovers(rep.Runtimes[r.Name], id)
			if it >= 0 {
				samples[r.Name] = append(samples[r.Name], s)
				if s.runExit != 0 {
					res := rep.Runtimes[r.Name]
					if res.SilentRunFailures == nil {
						res.SilentRunFailures = map[string]int{}
					}
					res.SilentRunFailures[strconv.Itoa(s.runExit)]++
				}
			}
		}
		if it >= 0 && (it+1)%10 == 0 {
			fmt.Fprintf(os.Stderr, "runtime-bench: %d/%d\n", it+1, *n)
		}
	}

	rss := map[string][]float64{}
	if runErr == nil && ctx.Err() == nil && *rssN > 0 {
		fmt.Fprintf(os.Stderr, "runtime-bench: %d runs per runtime under %s for max RSS\n", *rssN, *timeBin)
	rssLoop:
		for it := 0; it < *rssN; it++ {
			for k := range rts {
				r := rts[(k+it)%len(rts)]
				id := fmt.Sprintf("%s-rss%d", r.Name, it)
				s, err := b.iteration(r, id, true)
				if err != nil {
					runErr = fmt.Errorf("%s rss run %d: %w", r.Name, it, err)
					break rssLoop
				}
				b.countLeftovers(rep.Runtimes[r.Name], id)
				rss[r.Name] = append(rss[r.Name], float64(s.maxRSSKB))
			}
		}
	}

	if runErr == nil && ctx.Err() == nil && *cloneBin != "" {
		c, err := measureClone(*cloneBin, *cloneN)
		if err != nil {
			runErr = fmt.Errorf("clone measurement: %w", err)
		} else {
			rep.Clone = &c
		}
	}

	for _, r := range rts {
		res := rep.Runtimes[r.Name]
		var run, del, both []float64
		for _, s := range samples[r.Name] {
			run = append(run, s.runMs)
			del = append(del, s.deleteMs)
			both = append(both, s.runMs+s.deleteMs)
		}
		res.Samples = len(run)
		res.RunMs, res.DeleteMs, res.RunDeleteMs = summarize(run), summarize(del), summarize(both)
		res.MaxRSSKB = summarize(rss[r.Name])
	}
	// A Ctrl-C reaches the runtimes too; one of them may die of it before
	// our own handler has cancelled ctx.
	rep.Interrupt = ctx.Err() != nil || killedBySignal(runErr)
	if rep.Interrupt {
		runErr = nil
	}
	computeTargets(rep, *base)
	printTable(os.Stdout, rep, rts, *base)
	line, err := json.Marshal(sanitize(rep))
	must(err)
	if *jsonOut != "" {
		must(os.WriteFile(*jsonOut, append(line, '\n'), 0o644))
	}
	fmt.Println(string(line))
	if rep.Interrupt {
		fmt.Fprintln(os.Stderr, "runtime-bench: interrupted; the numbers above cover the iterations that finished")
		os.Exit(130)
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "runtime-bench:", runErr)
		os.Exit(1)
	}
}

// iteration runs `true` in a fresh container and deletes it. Writing the
// config is not timed. With underTime the run goes through GNU time and the
// sample's maxRSSKB is its %M. (Not wait4's ru_maxrss of a direct child:
// Go starts children with vfork semantics, so that high-water mark includes
// this harness's own RSS from before the exec, more than crun's whole RSS.)
func (b *bench) iteration(r rt, id string, underTime bool) (s sample, err error) {
	if err := b.ctx.Err(); err != nil {
		return s, err
	}
	if err := b.writeConfig(id); err != nil {
		return s, err
	}
	// Whatever happens, leave no container behind.
	deleted := false
	defer func() {
		if !deleted {
			_ = b.invoke(context.WithoutCancel(b.ctx), r.Path, "--root", r.State, "delete", "-f", id)
		}
	}()

	argv := []string{r.Path, "--root", r.State, "run", "--bundle", b.bundle, id}
	var rssFile string
	if underTime {
		rssFile = filepath.Join(r.State, "rss."+id)
		argv = append([]string{b.timeBin, "-f", "%M", "-o", rssFile}, argv...)
		defer os.Remove(rssFile)
	}
	t0 := time.Now()
	err = b.invoke(b.ctx, argv[0], argv[1:]...)
	t1 := time.Now()
	var ee *exec.ExitError
	if err != nil && errors.As(err, &ee) && ee.ExitCode() > 0 && fileEmpty(b.errFile) && b.ctx.Err() == nil {
		// `true` exits 0, so this is the runtime failing; with no message
		// it failed after the container ran (berth-runtime: waiting for an
		// init that already exited). Keep the sample, count the failure.
		s.runExit = ee.ExitCode()
	} else if err != nil {
		return s, fmt.Errorf("run: %w", err)
	}
	s.runMs = ms(t1.Sub(t0))
	if underTime {
		out, err := os.ReadFile(rssFile)
		if err != nil {
			return s, err
		}
		// GNU time writes "Command exited with non-zero status" first on failure.
		fields := strings.Fields(string(out))
		if len(fields) == 0 {
			return s, fmt.Errorf("empty GNU time output")
		}
		s.maxRSSKB, err = strconv.ParseInt(fields[len(fields)-1], 10, 64)
		if err != nil {
			return s, fmt.Errorf("GNU time output %q: %w", out, err)
		}
	}

	t2 := time.Now()
	err = b.invoke(context.WithoutCancel(b.ctx), r.Path, "--root", r.State, "delete", "-f", id)
	t3 := time.Now()
	deleted = true
	if err != nil {
		return s, fmt.Errorf("delete: %w", err)
	}
	s.deleteMs = ms(t3.Sub(t2))
	return s, nil
}

// invoke runs a command with stdin and stdout on /dev/null and stderr in a
// file (no pipes, so no copying goroutines and no waiting for pipe EOF), and
// fails with that stderr when it exits non-zero.
func (b *bench) invoke(ctx context.Context, path string, args ...string) error {
	if err := b.errFile.Truncate(0); err != nil {
		return err
	}
	if _, err := b.errFile.Seek(0, 0); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	// On interruption let the runtime finish its current step: a SIGTERM
	// (runc and crun forward it to the container's `true`), then wait.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = b.devnull, b.devnull, b.errFile
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(b.errFile.Name())
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(path), strings.Join(args, " "), err, bytes.TrimSpace(msg))
	}
	return nil
}

// killedBySignal reports whether err comes from a child that died of
// SIGINT, SIGTERM or SIGHUP.
func killedBySignal(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return false
	}
	switch ws.Signal() {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP:
		return true
	}
	return false
}

func fileEmpty(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Size() == 0
}

// writeConfig writes the bundle's config.json from the template with
// linux.cgroupsPath = <cgroup-parent>/<leaf>.
func (b *bench) writeConfig(leaf string) error {
	linux, _ := b.template["linux"].(map[string]any)
	if linux == nil {
		linux = map[string]any{}
		b.template["linux"] = linux
	}
	linux["cgroupsPath"] = b.cgroupParent + "/" + leaf
	data, err := json.MarshalIndent(b.template, "", "\t")
	if err != nil {
		return err
	}
	tmp := filepath.Join(b.bundle, ".config.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(b.bundle, "config.json"))
}

// countLeftovers looks for the container's leaf cgroup in every hierarchy
// after delete and counts it as a leftover cgroup, or, where the path is not
// on a cgroup filesystem, as a stray directory.
func (b *bench) countLeftovers(res *rtResult, leaf string) {
	hits, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", b.cgroupParent, leaf))
	direct := filepath.Join("/sys/fs/cgroup", b.cgroupParent, leaf)
	if _, err := os.Stat(direct); err == nil {
		hits = append(hits, direct)
	}
	cg, stray := false, false
	for _, h := range hits {
		var fs syscall.Statfs_t
		if syscall.Statfs(h, &fs) != nil {
			continue
		}
		switch fs.Type {
		case 0x27e0eb, 0x63677270: // CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC
			cg = true
		default:
			stray = true
		}
	}
	if cg {
		res.LeftCgroups++
	}
	if stray {
		res.StrayDirs++
	}
}

// checkNamespace refuses to run in the host's mount namespace or with
// /sys/fs/cgroup/unified still mounted, which crun rejects.
func checkNamespace() error {
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	init, err2 := os.Readlink("/proc/1/ns/mnt")
	if err1 == nil && err2 == nil && self == init {
		return errors.New("running in the host's mount namespace; start me through bench/runtime/run.sh")
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == "/sys/fs/cgroup/unified" {
			return errors.New("/sys/fs/cgroup/unified is mounted in this namespace (crun refuses the hybrid layout); start me through bench/runtime/run.sh")
		}
	}
	return nil
}

func computeTargets(rep *report, base string) {
	br := rep.Runtimes[base]
	if br == nil {
		return
	}
	limits := map[string]float64{"crun": 1.0, "runc": 0.4}
	rep.AllMet = true
	for _, other := range []string{"crun", "runc"} {
		o := rep.Runtimes[other]
		if o == nil || other == base {
			continue
		}
		for _, m := range []struct {
			name string
			b, o float64
		}{
			{"run", br.RunMs.Median, o.RunMs.Median},
			{"run_delete", br.RunDeleteMs.Median, o.RunDeleteMs.Median},
		} {
			ratio := m.b / m.o
			key := base + "/" + other + "_" + m.name
			rep.Ratios[key] = ratio
			t := target{
				Name:   fmt.Sprintf("%s median <= %.1fx %s median", base, limits[other], other),
				Metric: m.name, Ratio: ratio, Limit: limits[other],
				Met: ratio <= limits[other],
			}
			rep.Targets = append(rep.Targets, t)
			rep.AllMet = rep.AllMet && t.Met
		}
		rep.Ratios[base+"/"+other+"_max_rss"] = br.MaxRSSKB.Median / o.MaxRSSKB.Median
	}
}

func printTable(w0 *os.File, rep *report, rts []rt, base string) {
	done := rep.N
	for _, r := range rts {
		done = min(done, rep.Runtimes[r.Name].Samples)
	}
	partial := ""
	if done < rep.N {
		partial = fmt.Sprintf(" (INTERRUPTED: of %d requested)", rep.N)
	}
	fmt.Fprintf(w0, "\nberth runtime benchmark: %d timed iterations%s (+%d warm-up) per runtime, round-robin; `run` of `true` then `delete -f`\n", done, partial, rep.Warmup)
	fmt.Fprintf(w0, "host: %s, %s CPUs, kernel %s, load average %s at start; state dirs on %s\n\n",
		rep.Host["cpu"], rep.Host["cpus"], rep.Host["kernel"], rep.Host["loadavg"], rep.Host["state_fs"])
	w := tabwriter.NewWriter(w0, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "runtime\tversion\trun p10\trun median\trun p90\tdelete median\trun+delete p10\trun+delete median\trun+delete p90\tmax RSS KB (median/max)\tcgroups left\tstray dirs\t")
	for _, r := range rts {
		x := rep.Runtimes[r.Name]
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%d\t%d\t\n", r.Name, x.Version,
			x.RunMs.P10, x.RunMs.Median, x.RunMs.P90, x.DeleteMs.Median,
			x.RunDeleteMs.P10, x.RunDeleteMs.Median, x.RunDeleteMs.P90,
			rssCell(x.MaxRSSKB), x.LeftCgroups, x.StrayDirs)
	}
	w.Flush()
	for _, r := range rts {
		x := rep.Runtimes[r.Name]
		for code, c := range x.SilentRunFailures {
			fmt.Fprintf(w0, "WARNING: %s: %d of %d timed runs exited %s with nothing on stderr (after the container ran; samples kept)\n", r.Name, c, x.Samples, code)
		}
		if x.StrayDirs > 0 {
			fmt.Fprintf(w0, "note: %s left %d leaf directories on a non-cgroup filesystem (under the unmounted /sys/fs/cgroup/unified); run.sh removes them\n", r.Name, x.StrayDirs)
		}
	}
	fmt.Fprintln(w0, "(times in ms, wall clock of the runtime process; max RSS = GNU time %M of `run`, i.e. the largest of the runtime and the children it reaped)")
	fmt.Fprintln(w0)
	for _, t := range rep.Targets {
		verdict := "MET"
		if !t.Met {
			verdict = "NOT MET"
		}
		fmt.Fprintf(w0, "target %-34s %-10s ratio %.3f (limit %.1f)  %s\n", t.Name, t.Metric, t.Ratio, t.Limit, verdict)
	}
	for _, other := range []string{"crun", "runc"} {
		if v, ok := rep.Ratios[base+"/"+other+"_max_rss"]; ok {
			fmt.Fprintf(w0, "max RSS %s/%s: %.2f\n", base, other, v)
		}
	}
	if c := rep.Clone; c != nil {
		fmt.Fprintf(w0, "\nCVE-2019-5736 fallback self-copy (memfd_create + sendfile + seals + close; used only without open_tree) of %s, %.1f MiB: median %.0f µs (p10 %.0f, p90 %.0f), %.0f MiB/s, over %d copies\n",
			c.Binary, float64(c.BinaryBytes)/(1<<20), c.MedianUs, c.P10Us, c.P90Us, c.MiBPerSec, c.N)
		if c.SealEBUSY > 0 {
			fmt.Fprintf(w0, "  WARNING: F_ADD_SEALS failed with EBUSY %d times in %d attempts (retried); berth-runtime's cloneSelf does not retry\n", c.SealEBUSY, c.N+5+c.SealEBUSY)
		}
		if br := rep.Runtimes[base]; br != nil && br.RunMs.Median > 0 {
			fmt.Fprintf(w0, "  = %.1f%% of %s's median run\n", 100*c.MedianUs/1e3/br.RunMs.Median, base)
		}
	}
	fmt.Fprintln(w0)
}

func rssCell(s summary) string {
	if math.IsNaN(s.Median) {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f", s.Median, s.Max)
}

// sanitize replaces NaN (no samples) by -1 so the report stays valid JSON.
func sanitize(rep *report) *report {
	fix := func(s *summary) {
		for _, p := range []*float64{&s.Median, &s.P10, &s.P90, &s.Min, &s.Max} {
			if math.IsNaN(*p) || math.IsInf(*p, 0) {
				*p = -1
			}
		}
	}
	for _, r := range rep.Runtimes {
		fix(&r.RunMs)
		fix(&r.DeleteMs)
		fix(&r.RunDeleteMs)
		fix(&r.MaxRSSKB)
	}
	for k, v := range rep.Ratios {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			rep.Ratios[k] = -1
		}
	}
	for i := range rep.Targets {
		if math.IsNaN(rep.Targets[i].Ratio) {
			rep.Targets[i].Ratio = -1
		}
	}
	return rep
}

// version is the last word of the first line of `RUNTIME --version`
// ("crun version 1.8.1", "berth-runtime version ff5eca0").
func version(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "?"
	}
	f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	if len(f) == 0 {
		return "?"
	}
	return f[len(f)-1]
}

func hostInfo(stateDir string) map[string]string {
	h := map[string]string{"cpus": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version()}
	var fs syscall.Statfs_t
	if syscall.Statfs(stateDir, &fs) == nil {
		switch fs.Type {
		case 0x01021994:
			h["state_fs"] = "tmpfs"
		case 0xef53:
			h["state_fs"] = "ext4"
		case 0x58465342:
			h["state_fs"] = "xfs"
		case 0x9123683e:
			h["state_fs"] = "btrfs"
		case 0x794c7630:
			h["state_fs"] = "overlayfs"
		default:
			h["state_fs"] = fmt.Sprintf("0x%x", fs.Type)
		}
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		h["loadavg"] = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		h["kernel"] = cstr(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return h
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func names(rts []rt) string {
	var s []string
	for _, r := range rts {
		s = append(s, r.Name)
	}
	return strings.Join(s, ", ")
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtime-bench:", err)
		os.Exit(1)
	}
}
