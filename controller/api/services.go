package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type services struct {
	controllerv1.UnimplementedServicesServer
	*base
}

// validateService checks a service's name, selector and description;
// prefix ("" or e.g. "services[2]") qualifies the field names in errors.
func validateService(prefix, name string, selector map[string]string, description string) error {
	field := func(f string) string {
		if prefix == "" {
			return f
		}
		return prefix + "." + f
	}
	if err := checkText(field("name"), limits.ServiceName, name); err != nil {
		return err
	}
	if err := checkOptional(field("description"), limits.Note, description); err != nil {
		return err
	}
	if len(selector) == 0 {
		return invalid(field("selector"), "a service needs a selector (k=v,...) naming its nodes")
	}
	return validateLabels(field("selector"), selector, false)
}

func (s *services) CreateService(ctx context.Context, req *controllerv1.CreateServiceRequest) (*controllerv1.ServiceRecord, error) {
	svc, err := s.createService(ctx, req)
	return svc, s.rpcError("CreateService", err)
}

func (s *services) createService(ctx context.Context, req *controllerv1.CreateServiceRequest) (*controllerv1.ServiceRecord, error) {
	if err := validateService("", req.GetName(), req.GetSelector(), req.GetDescription()); err != nil {
		return nil, err
	}
	now := s.Now()
	svc := &controllerv1.ServiceRecord{
		Name:        req.GetName(),
		Selector:    req.GetSelector(),
		Description: req.GetDescription(),
		CreatedBy:   actor(ctx),
		CreatedAt:   stamp.Format(now),
	}
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Service(svc.Name)
		switch {
		case err == nil:
			return fmt.Errorf("service %s: %w", svc.Name, ErrExists)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := tx.PutService(svc); err != nil {
			return fmt.Errorf("store service %s: %w", svc.Name, err)
		}
		_, err = auditlog.Append(tx, now, svc.CreatedBy, "service.create", "service/"+svc.Name,
			map[string]string{"selector": formatLabels(svc.Selector)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return svc, nil
}

func (s *services) ListServices(ctx context.Context, _ *controllerv1.ListServicesRequest) (*controllerv1.ListServicesResponse, error) {
	var out []*controllerv1.ServiceRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Services()
		return err
	})
	if err != nil {
		return nil, s.rpcError("ListServices", err)
	}
	return &controllerv1.ListServicesResponse{Services: out}, nil
}

func (s *services) DeleteService(ctx context.Context, req *controllerv1.DeleteServiceRequest) (*controllerv1.DeleteServiceResponse, error) {
	if req.GetName() == "" {
		return nil, s.rpcError("DeleteService", invalid("name", "a service name is required"))
	}
	if err := checkText("name", limits.ServiceName, req.GetName()); err != nil {
		return nil, s.rpcError("DeleteService", err)
	}
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		svc, err := tx.Service(req.GetName())
		if err != nil {
			return fmt.Errorf("service %s: %w", req.GetName(), err)
		}
		if err := tx.DeleteService(svc.GetName()); err != nil {
			return fmt.Errorf("delete service %s: %w", svc.GetName(), err)
		}
		_, err = auditlog.Append(tx, s.Now(), actor(ctx), "service.delete", "service/"+svc.GetName(),
			map[string]string{"selector": formatLabels(svc.GetSelector())})
		return err
	})
	if err != nil {
		return nil, s.rpcError("DeleteService", err)
	}
	return &controllerv1.DeleteServiceResponse{}, nil
}
