// Command testapp is the stateful sample program that ckpt's demo and
// integration tests run in a container built FROM scratch.
//
// It keeps state only in memory: a random id chosen at start and a counter
// that ticks every 100 ms. A restarted process gets a new id; a restored one
// keeps its id and its count. It also holds a file in the container's
// writable layer open (/tmp/held.txt) and appends one line per second to
// $APP_DATA/history.log (default /data) when that directory exists.
//
// HTTP on :8080:
//
//	GET  /state            {"id":..., "counter":..., "pid":...}
//	GET  /held             contents of /tmp/held.txt, read through the open fd
//	POST /held?data=S      append S through the open fd
//	GET  /read?path=P      contents of file P
//	POST /write?path=P&data=S  write file P
//	POST /rm?path=P        remove P
//
// APP_ALLOC_MB=N makes it fill N MiB of memory with random bytes at start
// (benchmarks); with APP_ALLOC_KIND=mixed, half of it is repeated text
// records instead. APP_PEER=host:port makes it ask another testapp for its
// state every 200 ms over one kept-alive connection, reconnecting when it
// drops; /state then also says the peer's id and how many calls succeeded
// and failed. APP_CWD=DIR makes it work in DIR, as a database server does in
// its data directory (CRIU then checks DIR's mode on restore).
// APP_LISTEN=ADDR listens on ADDR instead of :8080 (a process run on the
// host, as bench/perf.sh runs it for raw CRIU). APP_WARM_SECONDS=N makes
// /state answer 503 for the first N seconds, as an app warming a cache
// would: a restored process answers at once. POST /touch?pct=P writes new
// random bytes over the first P percent of the APP_ALLOC_MB memory.
//
// "testapp get URL [CAFILE]" is a client instead: it prints the body of a
// GET of URL (HTTPS verified against CAFILE when given) and exits 0 when
// the answer is 200, 1 on another answer, 2 when there is none (where
// there is no curl, as in the test engines' roots).
//
//go:debug multipathtcp=0
package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

type state struct {
	mu         sync.Mutex
	id         string
	counter    int64
	peerID     string
	peerCalls  int64
	peerErrors int64
	held       *os.File
	ballast    []byte
	warm       bool
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "get" {
		get(os.Args[2], os.Args[3:])
		return
	}
	if err := os.MkdirAll("/tmp", 0o1777); err != nil {
		log.Fatal(err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		log.Fatal(err)
	}
	s := &state{id: hex.EncodeToString(b)}
	if dir := os.Getenv("APP_CWD"); dir != "" {
		if err := os.Chdir(dir); err != nil {
			log.Fatal(err)
		}
	}
	var err error
	s.held, err = os.OpenFile("/tmp/held.txt", os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(s.held, "held by %s\n", s.id)
	if mb, _ := strconv.Atoi(os.Getenv("APP_ALLOC_MB")); mb > 0 {
		s.ballast = make([]byte, mb<<20)
		random := s.ballast
		if os.Getenv("APP_ALLOC_KIND") == "mixed" {
			// Half random, half repeated records: more like a real heap.
			half := len(s.ballast) / 2
			random = s.ballast[:half]
			for i := half; i < len(s.ballast); {
				i += copy(s.ballast[i:], fmt.Sprintf(`{"user":%d,"name":"user-%d","active":true},`, i, i%977))
			}
		}
		if _, err := rand.Read(random); err != nil {
			log.Fatal(err)
		}
	}
	dataDir := os.Getenv("APP_DATA")
	if dataDir == "" {
		dataDir = "/data"
	}
	go s.tick(dataDir)
	warmFor, _ := strconv.Atoi(os.Getenv("APP_WARM_SECONDS"))
	s.warm = warmFor <= 0
	if !s.warm {
		time.AfterFunc(time.Duration(warmFor)*time.Second, func() {
			s.mu.Lock()
			s.warm = true
			s.mu.Unlock()
		})
	}
	if peer := os.Getenv("APP_PEER"); peer != "" {
		go s.askPeer(peer)
	}

	http.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.warm {
			http.Error(w, "warming", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": s.id, "counter": s.counter, "pid": os.Getpid(),
			"peer_id": s.peerID, "peer_calls": s.peerCalls, "peer_errors": s.peerErrors})
	})
	http.HandleFunc("GET /held", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.held.Stat()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		buf := make([]byte, st.Size())
		if _, err := s.held.ReadAt(buf, 0); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(buf)
	})
	http.HandleFunc("POST /held", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.held.WriteString(r.URL.Query().Get("data")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	http.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if os.IsNotExist(err) {
			http.Error(w, err.Error(), 404)
			return
		} else if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	http.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := os.WriteFile(p, []byte(r.URL.Query().Get("data")), 0o644); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	http.HandleFunc("POST /rm", func(w http.ResponseWriter, r *http.Request) {
		if err := os.RemoveAll(r.URL.Query().Get("path")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	http.HandleFunc("POST /touch", func(w http.ResponseWriter, r *http.Request) {
		pct, _ := strconv.Atoi(r.URL.Query().Get("pct"))
		s.mu.Lock()
		defer s.mu.Unlock()
		rand.Read(s.ballast[:len(s.ballast)*min(max(pct, 0), 100)/100])
	})
	addr := os.Getenv("APP_LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	log.Printf("testapp %s listening on %s", s.id, addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}

func (s *state) tick(dataDir string) {
	var history *os.File
	if st, err := os.Stat(dataDir); err == nil && st.IsDir() {
		history, err = os.OpenFile(filepath.Join(dataDir, "history.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
	}
	for range time.Tick(100 * time.Millisecond) {
		s.mu.Lock()
		s.counter++
		n := s.counter
		s.mu.Unlock()
		if history != nil && n%10 == 0 {
			fmt.Fprintf(history, "%s %d\n", s.id, n)
		}
	}
}

// askPeer keeps one connection to the peer and asks it for its state.
func (s *state) askPeer(peer string) {
	client := &http.Client{Timeout: 2 * time.Second}
	for range time.Tick(200 * time.Millisecond) {
		var st struct {
			ID string `json:"id"`
		}
		resp, err := client.Get("http://" + peer + "/state")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		s.mu.Lock()
		if err != nil {
			s.peerErrors++
		} else {
			s.peerID = st.ID
			s.peerCalls++
		}
		s.mu.Unlock()
	}
}

// get prints the body of a GET of url; it exits 1 unless the answer is 200,
// 2 without an answer.
func get(url string, ca []string) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(ca) > 0 {
		pem, err := os.ReadFile(ca[0])
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		os.Exit(1)
	}
}
