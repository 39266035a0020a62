package file_test

import (
	"testing"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/archivetest"
	"github.com/amber-kafka/amber/archive/file"
)

func TestStoreContract(t *testing.T) {
	archivetest.RunStoreTests(t, func(t *testing.T) archive.Store {
		s, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
