package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"go.uber.org/zap"
)

// stateFile holds the broker-to-port assignment inside Options.StateDir.
//
//	{"version":1,"brokers":{"10.0.0.7:9092":9093,"10.0.0.8:9092":9094}}
//
// Keys are the brokers' real addresses as the cluster advertises them;
// values are the proxy ports clients were told. It is rewritten (to a
// temporary file, then renamed) whenever a broker is added.
const stateFile = "brokers.json"

type stateDoc struct {
	Version int            `json:"version"`
	Brokers map[string]int `json:"brokers"`
}

// BrokerInfo describes one per-broker listener.
type BrokerInfo struct {
	// NodeID is the node id last seen for this address (-1 if only known
	// from the state file).
	NodeID int32
	// Upstream is the broker's real address.
	Upstream string
	// Listen is the proxy's listener for it, as bound.
	Listen string
	// Advertised is what clients are told instead of Upstream.
	Advertised string
}

// brokerListener is one per-broker listener, forwarding to one upstream.
type brokerListener struct {
	upstream string // real broker host:port
	ln       net.Listener
	port     int32 // advertised port
	nodeID   int32
}

// addrMap maps real broker addresses to per-broker listeners, creating a
// listener the first time an address is seen in a response. It implements
// protocol.AddrMapper.
//
// Each distinct real address gets its own listener and port; node ids pass
// through unchanged, so the client's view (node id → proxy address) is a
// bijection with the cluster's (node id → broker address).
//
// Lock order: createMu before mu. mu guards the maps only; listening and
// writing the state file happen under createMu, never under mu.
type addrMap struct {
	p *Proxy

	createMu sync.Mutex // serialises listener creation and state writes

	mu struct {
		sync.Mutex
		byAddr map[string]*brokerListener
		ports  map[int]bool   // ports in use by broker listeners
		saved  map[string]int // assignment from the state file, plus new ones
	}
}

func newAddrMap(p *Proxy) *addrMap {
	m := &addrMap{p: p}
	m.mu.byAddr = make(map[string]*brokerListener)
	m.mu.ports = make(map[int]bool)
	m.mu.saved = make(map[string]int)
	return m
}

// load reads the state file, if any, and binds every listener it names, so
// that clients reconnecting after a restart find their brokers at once.
func (m *addrMap) load() error {
	if m.p.opts.StateDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(m.p.opts.StateDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read broker state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("parse broker state %s: %w (delete it to start afresh)", filepath.Join(m.p.opts.StateDir, stateFile), err)
	}
	addrs := make([]string, 0, len(doc.Brokers))
	for addr := range doc.Brokers {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	m.createMu.Lock()
	defer m.createMu.Unlock()
	m.mu.Lock()
	for addr, port := range doc.Brokers {
		m.mu.saved[addr] = port
	}
	m.mu.Unlock()
	for _, addr := range addrs {
		if _, err := m.createLocked(addr, -1); err != nil {
			return err
		}
	}
	return nil
}

// MapAddr returns the proxy address for the broker at host:port, creating
// its listener if needed.
func (m *addrMap) MapAddr(nodeID int32, host string, port int32) (string, int32, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	m.mu.Lock()
	bl := m.mu.byAddr[addr]
	if bl != nil && nodeID >= 0 {
		bl.nodeID = nodeID
	}
	m.mu.Unlock()
	if bl == nil {
		m.createMu.Lock()
		var err error
		bl, err = m.createLocked(addr, nodeID)
		m.createMu.Unlock()
		if err != nil {
			return "", 0, err
		}
	}
	return m.p.opts.AdvertiseHost, bl.port, nil
}

// createLocked binds a listener for the broker at addr unless one exists.
// It expects createMu.
func (m *addrMap) createLocked(addr string, nodeID int32) (*brokerListener, error) {
	m.mu.Lock()
	if bl := m.mu.byAddr[addr]; bl != nil {
		m.mu.Unlock()
		return bl, nil
	}
	want, known := m.mu.saved[addr]
	m.mu.Unlock()

	host, _, _ := net.SplitHostPort(m.p.opts.Listen)
	ln, err := m.listen(host, want, known)
	if err != nil {
		return nil, fmt.Errorf("listen for broker %s: %w", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	bl := &brokerListener{upstream: addr, ln: ln, port: int32(port), nodeID: nodeID}

	m.mu.Lock()
	m.mu.byAddr[addr] = bl
	m.mu.ports[port] = true
	changed := !known || want != port
	m.mu.saved[addr] = port
	saved := make(map[string]int, len(m.mu.saved))
	for k, v := range m.mu.saved {
		saved[k] = v
	}
	m.mu.Unlock()

	if changed {
		if err := m.save(saved); err != nil {
			m.p.log.Warn("broker port assignment not saved: a restarted proxy may move this broker to another port", zap.Error(err))
		}
	}
	m.p.log.Info("broker listener up", zap.String("upstream", addr), zap.Int("node_id", int(nodeID)), zap.String("listen", ln.Addr().String()))
	m.p.serve(ln, bl)
	return bl, nil
}

// listen binds the port saved for a broker if there is one, else the next
// free port from BrokerPortBase, else a kernel-chosen port.
func (m *addrMap) listen(host string, want int, known bool) (net.Listener, error) {
	if known {
		ln, err := m.p.listenTCP(net.JoinHostPort(host, strconv.Itoa(want)))
		if err == nil {
			return ln, nil
		}
		m.p.log.Warn("saved broker port unavailable; taking another", zap.Int("port", want), zap.Error(err))
	}
	base := m.p.opts.BrokerPortBase
	if base == 0 {
		return m.p.listenTCP(net.JoinHostPort(host, "0"))
	}
	var lastErr error
	for port := base; port <= 65535 && port < base+4096; port++ {
		if m.portTaken(port) {
			continue
		}
		ln, err := m.p.listenTCP(net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free port from %d: %w", base, lastErr)
}

func (m *addrMap) portTaken(port int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.ports[port] {
		return true
	}
	for _, p := range m.mu.saved {
		if p == port {
			return true
		}
	}
	return false
}

func (m *addrMap) save(brokers map[string]int) error {
	dir := m.p.opts.StateDir
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(stateDoc{Version: 1, Brokers: brokers})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
}

// brokers lists the per-broker listeners, sorted by upstream address.
func (m *addrMap) brokers() []BrokerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]BrokerInfo, 0, len(m.mu.byAddr))
	for _, bl := range m.mu.byAddr {
		out = append(out, BrokerInfo{
			NodeID:     bl.nodeID,
			Upstream:   bl.upstream,
			Listen:     bl.ln.Addr().String(),
			Advertised: net.JoinHostPort(m.p.opts.AdvertiseHost, strconv.Itoa(int(bl.port))),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream < out[j].Upstream })
	return out
}
