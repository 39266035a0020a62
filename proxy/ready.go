package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// Ready reports whether the upstream cluster answers: it dials the
// upstreams in turn (with TLS if configured) and sends an ApiVersions
// request, returning nil on the first response. It backs /readyz.
func (p *Proxy) Ready(ctx context.Context) error {
	up, addr, err := p.dialUpstream(ctx, p.opts.Upstreams)
	if err != nil {
		return err
	}
	defer up.Close()
	if d, ok := ctx.Deadline(); ok {
		up.SetDeadline(d)
	} else {
		up.SetDeadline(time.Now().Add(p.opts.DialTimeout))
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("amber-readyz"))
	if _, err := up.Write(f.AppendRequest(nil, req, 1)); err != nil {
		return fmt.Errorf("%s: send ApiVersions: %w", addr, err)
	}
	br := bufio.NewReader(up)
	var prefix [protocol.SizeLen]byte
	if _, err := io.ReadFull(br, prefix[:]); err != nil {
		return fmt.Errorf("%s: read ApiVersions response: %w", addr, err)
	}
	if _, err := protocol.CheckSize(prefix, protocol.MinResponseLen, p.opts.MaxFrameBytes, protocol.FromBroker); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	return nil
}
