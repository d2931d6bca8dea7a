package sqlite_test

import (
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

func TestReseal(t *testing.T) {
	storetest.RunReseal(t, func(t *testing.T) core.Store { return newStore(t) })
}
