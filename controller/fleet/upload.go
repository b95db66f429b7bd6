package fleet

import (
	"bytes"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// UploadAudit receives one audit document in chunks, verifies it, stores
// its canonical encoding as a blob and records it. Uploads are frequent
// and not operator actions, so they do not go into the audit log.
func (a *agentService) UploadAudit(stream grpc.ClientStreamingServer[agentv1.AuditChunk, agentv1.UploadAuditResponse]) error {
	f := a.f
	ctx := stream.Context()
	id, err := nodeID(ctx)
	if err != nil {
		return err
	}
	node, err := f.liveNode(ctx, id)
	if err != nil {
		return err
	}

	var (
		buf       bytes.Buffer
		commandID string
		first     = true
	)
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if first {
			commandID, first = c.GetCommandId(), false
		}
		if int64(buf.Len())+int64(len(c.GetData())) > f.maxAudit {
			return status.Errorf(codes.ResourceExhausted, "audit larger than the controller's limit of %s (%d bytes, max_audit_bytes)",
				bytesize.Format(uint64(f.maxAudit)), f.maxAudit)
		}
		buf.Write(c.GetData())
	}

	doc, err := audit.Decode(buf.Bytes())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if n := doc.GetHeader().GetNodeId(); n != "" && n != id {
		return status.Errorf(codes.PermissionDenied, "the audit was taken for node %s, not for the uploading node %s", n, id)
	}
	canon, err := audit.Marshal(doc)
	if err != nil {
		return status.Errorf(codes.Internal, "encode audit: %v", err)
	}
	digest, size, err := f.blobs.Put(ctx, bytes.NewReader(canon), int64(len(canon)))
	if err != nil {
		return status.Errorf(codes.Internal, "store audit: %v", err)
	}

	now := f.now()
	hostname := doc.GetOs().GetHostname()
	if hostname == "" {
		hostname = node.GetHostname()
	}
	rec := &controllerv1.AuditRecord{
		Id:               doc.GetHashes().GetDocument(),
		NodeId:           id,
		Hostname:         hostname,
		CollectedAt:      doc.GetHeader().GetCollectedAt(),
		StoredAt:         stamp.Format(now),
		ContentHash:      doc.GetHashes().GetContent(),
		SizeBytes:        size,
		CommandId:        commandID,
		FailedCollectors: audit.Failed(doc),
		Blob:             digest,
	}
	err = f.st.Update(ctx, func(tx store.Tx) error {
		if commandID != "" {
			c, err := tx.Command(commandID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return status.Errorf(codes.InvalidArgument, "unknown command %s", commandID)
			case err != nil:
				return err
			case c.GetNodeId() != id:
				return status.Errorf(codes.PermissionDenied, "command %s is not for node %s", commandID, id)
			}
		}
		old, err := tx.Audit(rec.GetId())
		switch {
		case err == nil && old.GetNodeId() != id:
			return status.Errorf(codes.PermissionDenied, "audit %s belongs to another node", rec.GetId())
		case err == nil:
			// The same document again (a retried upload): keep the first record.
			rec = old
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := tx.PutAudit(rec); err != nil {
			return err
		}
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		n.LastAuditId = rec.GetId()
		n.LastAuditAt = rec.GetCollectedAt()
		return tx.PutNode(n)
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Errorf(codes.Internal, "record audit: %v", err)
	}
	f.log.Debug("audit stored", "node_id", id, "audit_id", rec.GetId(), "size_bytes", rec.GetSizeBytes(), "command_id", commandID)
	return stream.SendAndClose(&agentv1.UploadAuditResponse{AuditId: rec.GetId(), Header: doc.GetHeader()})
}
