package store_test

import (
	"testing"

	"microk8s-platform/service/store"
	"microk8s-platform/service/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}
