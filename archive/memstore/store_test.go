package memstore_test

import (
	"testing"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/archivetest"
	"github.com/amber-kafka/amber/archive/memstore"
)

func TestStoreContract(t *testing.T) {
	archivetest.RunStoreTests(t, func(*testing.T) archive.Store { return memstore.New() })
}
