package store_test

import (
	"testing"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/controller/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}
