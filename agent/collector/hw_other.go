//go:build !linux

package collector

import (
	"context"
	"errors"
	"fmt"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// The hardware collectors read Linux's sysfs and procfs; elsewhere they
// report that they cannot.

func (c CPU) Collect(context.Context, Env, *inventoryv1.Audit) error     { return hwUnsupported(c) }
func (c Memory) Collect(context.Context, Env, *inventoryv1.Audit) error  { return hwUnsupported(c) }
func (c Block) Collect(context.Context, Env, *inventoryv1.Audit) error   { return hwUnsupported(c) }
func (c Network) Collect(context.Context, Env, *inventoryv1.Audit) error { return hwUnsupported(c) }
func (c PCI) Collect(context.Context, Env, *inventoryv1.Audit) error     { return hwUnsupported(c) }
func (c GPU) Collect(context.Context, Env, *inventoryv1.Audit) error     { return hwUnsupported(c) }
func (c DMI) Collect(context.Context, Env, *inventoryv1.Audit) error     { return hwUnsupported(c) }

func hwUnsupported(c Collector) error {
	return fmt.Errorf("%s: %w", c.Section(), errors.ErrUnsupported)
}
