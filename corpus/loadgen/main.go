// loadgen: a closed-loop HTTP load generator (standard library only).
// -c workers each send a request, wait for the full response, and send the
// next one, cycling through the -url list, until -n requests have been sent
// or -d has passed (whichever comes first; default -d 5s). With -rate R the
// requests are paced to R per second in total (request i is not sent before
// start + i/R), still closed loop: a worker never has two requests in flight,
// so a slow server lowers the rate instead of queueing. A JSON summary
// goes to stdout: totals and per-URL count, errors (transport errors and
// non-2xx statuses), and latency percentiles in nanoseconds.
//
//	loadgen -url http://127.0.0.1:8080/api/orders,http://127.0.0.1:8080/api/health -c 8 -d 5s
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }
func (u *urlList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*u = append(*u, p)
		}
	}
	return nil
}

type sample struct {
	url    int
	lat    time.Duration
	failed bool
	status int
}

type stats struct {
	Count  int            `json:"count"`
	Errors int            `json:"errors"`
	Status map[string]int `json:"status"`
	P50    int64          `json:"p50_ns"`
	P90    int64          `json:"p90_ns"`
	P99    int64          `json:"p99_ns"`
	Max    int64          `json:"max_ns"`
	Mean   int64          `json:"mean_ns"`
}

// summarize computes nearest-rank percentiles.
func summarize(s []sample) stats {
	st := stats{Count: len(s), Status: map[string]int{}}
	if len(s) == 0 {
		return st
	}
	lat := make([]int64, len(s))
	var sum int64
	for i, x := range s {
		lat[i] = int64(x.lat)
		sum += lat[i]
		if x.failed {
			st.Errors++
		}
		k := "error"
		if x.status != 0 {
			k = fmt.Sprint(x.status)
		}
		st.Status[k]++
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) int64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		if i < 0 {
			i = 0
		}
		return lat[i]
	}
	st.P50, st.P90, st.P99, st.Max = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1]
	st.Mean = sum / int64(len(lat))
	return st
}

func newTraceparent() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

func main() {
	var urls urlList
	flag.Var(&urls, "url", "URL to request (repeatable, or a comma-separated list); requests cycle through them")
	c := flag.Int("c", 4, "concurrency (closed-loop workers)")
	n := flag.Int64("n", 0, "total requests (0: no limit)")
	d := flag.Duration("d", 0, "duration (default 5s when -n is not given)")
	rate := flag.Float64("rate", 0, "pace to at most this many requests per second in total (0: as fast as possible)")
	tp := flag.Bool("traceparent", false, "send a fresh W3C traceparent header with every request")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	if len(urls) == 0 || *c < 1 {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL[,URL...] [-c N] [-n N | -d DURATION] [-traceparent]")
		os.Exit(2)
	}
	if *n <= 0 && *d <= 0 {
		*d = 5 * time.Second
	}
	client := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{MaxIdleConns: *c * 2, MaxIdleConnsPerHost: *c * 2},
	}

	var issued int64
	var deadline time.Time
	start := time.Now()
	if *d > 0 {
		deadline = start.Add(*d)
	}
	results := make([][]sample, *c)
	var wg sync.WaitGroup
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&issued, 1)
				if (*n > 0 && i > *n) || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				if *rate > 0 {
					due := start.Add(time.Duration(float64(i-1) / *rate * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				}
				u := int((i - 1) % int64(len(urls)))
				req, err := http.NewRequest(http.MethodGet, urls[u], nil)
				if err != nil {
					fmt.Fprintln(os.Stderr, "loadgen:", err)
					os.Exit(2)
				}
				if *tp {
					req.Header.Set("traceparent", newTraceparent())
				}
				t0 := time.Now()
				s := sample{url: u}
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.status = resp.StatusCode
				}
				s.lat = time.Since(t0)
				s.failed = err != nil || s.status < 200 || s.status > 299
				results[w] = append(results[w], s)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []sample
	per := map[string][]sample{} // a URL listed twice (to weight it) is reported once
	for _, r := range results {
		all = append(all, r...)
		for _, s := range r {
			per[urls[s.url]] = append(per[urls[s.url]], s)
		}
	}
	type out struct {
		stats
		ElapsedNs   int64            `json:"elapsed_ns"`
		RPS         float64          `json:"rps"`
		Concurrency int              `json:"concurrency"`
		Rate        float64          `json:"rate"`
		Traceparent bool             `json:"traceparent"`
		URLs        map[string]stats `json:"urls"`
	}
	o := out{stats: summarize(all), ElapsedNs: elapsed.Nanoseconds(), Concurrency: *c, Rate: *rate,
		Traceparent: *tp, URLs: map[string]stats{}}
	o.RPS = math.Round(float64(len(all))/elapsed.Seconds()*10) / 10
	for u, s := range per {
		o.URLs[u] = summarize(s)
	}
	b, _ := json.MarshalIndent(o, "", "  ")
	fmt.Println(string(b))
	if o.Count == 0 || o.Errors == o.Count {
		os.Exit(1)
	}
}
