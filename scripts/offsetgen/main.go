// offsetgen dumps, from the DWARF and data of a Go binary, the struct offsets and enum
// numbering that gcap's BPF programs need, in the JSON shape of gcap's
// capture/src/inspect/offsets.rs GoOffsets. scripts/gen-offsets.sh builds it and a target
// with each real toolchain and merges the results into capture/src/inspect/offsets_table.json,
// which gcap uses for targets without DWARF. Standard library only (debug/dwarf, debug/elf)
// so every toolchain from go1.19 builds it offline.
//
// Usage:
//
//	offsetgen dump BINARY            # print one version's entry as JSON
//	offsetgen merge TABLE ENTRY...   # merge entries into TABLE, keyed by Go minor version
package main

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type gOffsets struct {
	StackLo      int64  `json:"stack_lo"`
	StackHi      int64  `json:"stack_hi"`
	Goid         int64  `json:"goid"`
	Atomicstatus int64  `json:"atomicstatus"`
	Waitreason   int64  `json:"waitreason"`
	Waitsince    int64  `json:"waitsince"`
	TrackingSeq  int64  `json:"tracking_seq"`
	ParentGoid   *int64 `json:"parent_goid"`
	Gopc         int64  `json:"gopc"`
	Startpc      int64  `json:"startpc"`
	M            int64  `json:"m"`
	SchedSP      int64  `json:"sched_sp"`
	SchedPC      int64  `json:"sched_pc"`
	SchedBP      int64  `json:"sched_bp"`
	Syscallsp    int64  `json:"syscallsp"`
	Syscallpc    int64  `json:"syscallpc"`
}

type mOffsets struct {
	Procid int64 `json:"procid"`
	Curg   int64 `json:"curg"`
	ID     int64 `json:"id"`
}

type hchanOffsets struct {
	Lock int64 `json:"lock"`
}

type httpOffsets struct {
	RequestMethod             *int64 `json:"request_method"`
	RequestURL                *int64 `json:"request_url"`
	RequestHeader             *int64 `json:"request_header"`
	RequestContentLength      *int64 `json:"request_content_length"`
	RequestHost               *int64 `json:"request_host"`
	RequestCtx                *int64 `json:"request_ctx"`
	URLHost                   *int64 `json:"url_host"`
	URLPath                   *int64 `json:"url_path"`
	URLRawQuery               *int64 `json:"url_raw_query"`
	ResponseStatusCode        *int64 `json:"response_status_code"`
	ServerResponseReq         *int64 `json:"server_response_req"`
	ServerResponseStatus      *int64 `json:"server_response_status"`
	ServerResponseWroteHeader *int64 `json:"server_response_wrote_header"`
}

type waitReason struct {
	Value int64  `json:"value"`
	Name  string `json:"name"`
	Text  string `json:"text"`
}

type entry struct {
	GoVersion   string           `json:"go_version"`
	G           gOffsets         `json:"g"`
	M           mOffsets         `json:"m"`
	Hchan       hchanOffsets     `json:"hchan"`
	HTTP        httpOffsets      `json:"http"`
	GStatus     map[string]int64 `json:"g_status"`
	WaitReasons []waitReason     `json:"wait_reasons"`
}

type table struct {
	Comment  string            `json:"comment"`
	Versions map[string]*entry `json:"versions"`
}

var wanted = map[string]bool{
	"runtime.g": true, "runtime.m": true, "runtime.gobuf": true, "runtime.stack": true, "runtime.hchan": true,
	"net/http.Request": true, "net/http.Response": true, "net/http.response": true,
	"net/url.URL": true,
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "offsetgen: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "dump" {
		e := dump(os.Args[2])
		out, _ := json.MarshalIndent(e, "", "  ")
		os.Stdout.Write(append(out, '\n'))
		return
	}
	if len(os.Args) >= 3 && os.Args[1] == "merge" {
		merge(os.Args[2], os.Args[3:])
		return
	}
	fail("usage: offsetgen dump BINARY | offsetgen merge TABLE ENTRY.json...")
}

func dump(path string) *entry {
	f, err := elf.Open(path)
	if err != nil {
		fail("%v", err)
	}
	d, err := f.DWARF()
	if err != nil {
		fail("%s has no usable DWARF (%v); build the target without -ldflags=-w", path, err)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	structs := map[string]map[string]int64{}
	consts := map[string]int64{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			fail("reading DWARF: %v", err)
		}
		if e == nil {
			break
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		switch e.Tag {
		case dwarf.TagStructType:
			if !wanted[name] || structs[name] != nil || !e.Children {
				continue
			}
			m := map[string]int64{}
			for {
				c, err := r.Next()
				if err != nil {
					fail("reading DWARF: %v", err)
				}
				if c == nil || c.Tag == 0 {
					break
				}
				if c.Tag == dwarf.TagMember {
					n, _ := c.Val(dwarf.AttrName).(string)
					if off, ok := c.Val(dwarf.AttrDataMemberLoc).(int64); ok {
						m[n] = off
					}
				}
				if c.Children {
					r.SkipChildren()
				}
			}
			structs[name] = m
		case dwarf.TagConstant:
			if strings.HasPrefix(name, "runtime._G") || strings.HasPrefix(name, "runtime.waitReason") {
				if v, ok := e.Val(dwarf.AttrConstValue).(int64); ok {
					consts[name] = v
				}
			}
		}
	}
	req := func(ty, field string) int64 {
		v, ok := structs[ty][field]
		if !ok {
			fail("%s: DWARF has no %s.%s", path, ty, field)
		}
		return v
	}
	opt := func(ty, field string) *int64 {
		v, ok := structs[ty][field]
		if !ok {
			return nil
		}
		return &v
	}
	sched := req("runtime.g", "sched")
	stack := req("runtime.g", "stack")
	e := &entry{
		GoVersion: strings.Fields(bi.GoVersion)[0],
		G: gOffsets{
			StackLo: stack + req("runtime.stack", "lo"), StackHi: stack + req("runtime.stack", "hi"),
			Waitsince: req("runtime.g", "waitsince"), TrackingSeq: req("runtime.g", "trackingSeq"),
			SchedBP: sched + req("runtime.gobuf", "bp"),
			Goid:    req("runtime.g", "goid"), Atomicstatus: req("runtime.g", "atomicstatus"),
			Waitreason: req("runtime.g", "waitreason"), ParentGoid: opt("runtime.g", "parentGoid"),
			Gopc: req("runtime.g", "gopc"), Startpc: req("runtime.g", "startpc"), M: req("runtime.g", "m"),
			SchedSP: sched + req("runtime.gobuf", "sp"), SchedPC: sched + req("runtime.gobuf", "pc"),
			Syscallsp: req("runtime.g", "syscallsp"), Syscallpc: req("runtime.g", "syscallpc"),
		},
		M:     mOffsets{Procid: req("runtime.m", "procid"), Curg: req("runtime.m", "curg"), ID: req("runtime.m", "id")},
		Hchan: hchanOffsets{Lock: req("runtime.hchan", "lock")},
		HTTP: httpOffsets{
			RequestMethod: opt("net/http.Request", "Method"), RequestURL: opt("net/http.Request", "URL"),
			RequestHeader: opt("net/http.Request", "Header"), RequestContentLength: opt("net/http.Request", "ContentLength"),
			RequestHost: opt("net/http.Request", "Host"), RequestCtx: opt("net/http.Request", "ctx"),
			URLHost: opt("net/url.URL", "Host"), URLPath: opt("net/url.URL", "Path"), URLRawQuery: opt("net/url.URL", "RawQuery"),
			ResponseStatusCode:        opt("net/http.Response", "StatusCode"),
			ServerResponseReq:         opt("net/http.response", "req"),
			ServerResponseStatus:      opt("net/http.response", "status"),
			ServerResponseWroteHeader: opt("net/http.response", "wroteHeader"),
		},
		GStatus: map[string]int64{},
	}
	texts := waitReasonStrings(f)
	for n, v := range consts {
		if s := strings.TrimPrefix(n, "runtime."); strings.HasPrefix(s, "_G") {
			e.GStatus[s] = v
		} else {
			t := ""
			if v >= 0 && int(v) < len(texts) {
				t = texts[v]
			}
			e.WaitReasons = append(e.WaitReasons, waitReason{Value: v, Name: s, Text: t})
		}
	}
	sort.Slice(e.WaitReasons, func(i, j int) bool {
		a, b := e.WaitReasons[i], e.WaitReasons[j]
		return a.Value < b.Value || (a.Value == b.Value && a.Name < b.Name)
	})
	return e
}

// waitReasonStrings reads runtime.waitReasonStrings ([N]string) from the binary's data.
func waitReasonStrings(f *elf.File) []string {
	syms, err := f.Symbols()
	if err != nil {
		fail("no symbol table (%v); build the target without -ldflags=-s", err)
	}
	read := func(addr, n uint64) []byte {
		for _, s := range f.Sections {
			if s.Type != elf.SHT_NOBITS && addr >= s.Addr && addr+n <= s.Addr+s.Size {
				b := make([]byte, n)
				if _, err := s.ReadAt(b, int64(addr-s.Addr)); err == nil {
					return b
				}
			}
		}
		fail("address %#x (+%d) is not in the file", addr, n)
		return nil
	}
	for _, s := range syms {
		if s.Name != "runtime.waitReasonStrings" {
			continue
		}
		arr := read(s.Value, s.Size)
		out := make([]string, 0, s.Size/16)
		for i := uint64(0); i+16 <= s.Size; i += 16 {
			p := binary.LittleEndian.Uint64(arr[i:])
			l := binary.LittleEndian.Uint64(arr[i+8:])
			if l == 0 {
				out = append(out, "")
				continue
			}
			out = append(out, string(read(p, l)))
		}
		return out
	}
	fail("runtime.waitReasonStrings not found in the symbol table")
	return nil
}

func merge(tablePath string, entries []string) {
	t := table{Versions: map[string]*entry{}}
	if b, err := os.ReadFile(tablePath); err == nil {
		if err := json.Unmarshal(b, &t); err != nil {
			fail("%s: %v", tablePath, err)
		}
		if t.Versions == nil {
			t.Versions = map[string]*entry{}
		}
	}
	for _, p := range entries {
		b, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			fail("%s: %v", p, err)
		}
		parts := strings.SplitN(strings.TrimPrefix(e.GoVersion, "go"), ".", 3)
		if len(parts) < 2 {
			fail("%s: unexpected go_version %q", p, e.GoVersion)
		}
		t.Versions[parts[0]+"."+parts[1]] = &e
	}
	t.Comment = "GENERATED by scripts/gen-offsets.sh from each toolchain's DWARF; do not edit by hand"
	out, err := json.MarshalIndent(&t, "", "  ")
	if err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(tablePath, append(out, '\n'), 0o644); err != nil {
		fail("%v", err)
	}
}
