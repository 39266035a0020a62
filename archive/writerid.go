package archive

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writerIDFile holds a proxy's writer id: 16 lowercase hex characters and a
// newline, created once and never changed.
const writerIDFile = "writer-id"

// LoadWriterID returns the writer id kept in dir, creating it on first use.
// Each proxy (each data directory) is one writer; several writers can later
// share one archive because every object name carries its writer id.
func LoadWriterID(dir string) (string, error) {
	path := filepath.Join(dir, writerIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !validWriterID(id) {
			return "", fmt.Errorf("writer id in %s is %q: want 16 hex characters (delete the file only if this data directory is new)", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read writer id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write writer id: %w", err)
	}
	return id, nil
}

func validWriterID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// writeFileAtomic writes b to path through a synced temporary file and a
// rename, then syncs the directory, so a crash leaves either nothing or
// the whole file.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
