package secretbox

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Files the data-dir key rotation (`longhook master-key rotate`) leaves
// beside KeyFileName. Both are loaded as fallback keys, so that a crash at
// any point of a rotation leaves a database the server can still open.
const (
	// PendingKeyFileName holds the next master key while a rotation is
	// under way: written (whole, synced) before any value is re-sealed
	// under it, renamed over master.key once all are.
	PendingKeyFileName = "master.key.next"
	// PreviousKeyFileName holds the master key a rotation replaced: it
	// opens backups of the database made before the rotation.
	PreviousKeyFileName = "master.key.previous"
)

// Keys is a master key ring as configured: Primary seals, Fallbacks only
// open.
type Keys struct {
	Primary   []byte
	Fallbacks [][]byte
	// FromEnv tells that Primary came from LONGHOOK_MASTER_KEY, not from
	// the data dir's master.key.
	FromEnv bool
}

// Box returns the Box of the ring.
func (k Keys) Box() (*Box, error) { return New(k.Primary, k.Fallbacks...) }

// LoadKeys returns the master key ring: the primary key as LoadKey finds
// it (ErrNoKey when there is none); as fallbacks, the keys of
// fallbackEnv (LONGHOOK_MASTER_KEY_FALLBACK: comma-separated, each base64
// or 64 hex characters) and, when the primary is the data dir's
// master.key, the pending and previous key files that exist there. A
// fallback equal to the primary or to an earlier fallback is left out. It
// writes nothing.
func LoadKeys(env, fallbackEnv, dataDir string) (Keys, error) {
	fallbacks, err := ParseKeyList(fallbackEnv)
	if err != nil {
		return Keys{}, fmt.Errorf("LONGHOOK_MASTER_KEY_FALLBACK: %w", err)
	}
	primary, err := LoadKey(env, dataDir)
	if err != nil {
		return Keys{}, err
	}
	k := Keys{Primary: primary, FromEnv: strings.TrimSpace(env) != ""}
	if !k.FromEnv {
		for _, name := range []string{PendingKeyFileName, PreviousKeyFileName} {
			key, err := readKeyFile(filepath.Join(dataDir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return Keys{}, err
			}
			fallbacks = append(fallbacks, key)
		}
	}
	for _, f := range fallbacks {
		if !containsKey(append([][]byte{k.Primary}, k.Fallbacks...), f) {
			k.Fallbacks = append(k.Fallbacks, f)
		}
	}
	return k, nil
}

func containsKey(keys [][]byte, key []byte) bool {
	for _, k := range keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// ParseKeyList decodes a comma-separated list of keys (each base64 or 64
// hex characters encoding 32 bytes); empty entries are skipped.
func ParseKeyList(list string) ([][]byte, error) {
	var keys [][]byte
	for i, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		key, err := decodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// readKeyFile reads and decodes one key file.
func readKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read master key: %w", err)
	}
	key, err := decodeKey(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// NewKey returns a new random master key.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return key, nil
}

// PendingKey returns the key of dataDir/master.key.next, creating that
// file with a new random key when it does not exist; resumed tells that
// it existed (a rotation that stopped part way). The file is written
// whole or not at all (SavePendingKey).
func PendingKey(dataDir string) (key []byte, resumed bool, err error) {
	key, resumed, err = NextKey(dataDir)
	if err != nil || resumed {
		return key, resumed, err
	}
	return key, false, SavePendingKey(dataDir, key)
}

// NextKey returns the key a rotation seals under: that of
// dataDir/master.key.next when the file exists (resumed: a rotation that
// stopped part way), else a new random key, not written anywhere yet —
// SavePendingKey writes it once the rotation knows every value opens, so
// a rotation refused (a wrong master.key) leaves the data dir as it was.
func NextKey(dataDir string) (key []byte, resumed bool, err error) {
	key, err = readKeyFile(filepath.Join(dataDir, PendingKeyFileName))
	if err == nil {
		return key, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	key, err = NewKey()
	return key, false, err
}

// SavePendingKey writes key to dataDir/master.key.next, before any value
// is sealed under it: to a temporary name, synced, then renamed, and the
// directory synced.
func SavePendingKey(dataDir string, key []byte) error {
	return writeFileSynced(filepath.Join(dataDir, PendingKeyFileName), []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
}

// CommitPendingKey ends a rotation once every value is sealed under the
// pending key: it copies master.key to master.key.previous, then renames
// master.key.next over master.key, each step synced. After a crash at any
// step master.key and master.key.next both still exist (or the rename
// is done), so the ring LoadKeys builds opens every value, and running
// the rotation again finishes it. An earlier rotation's
// master.key.previous is never overwritten (backups made before that
// rotation need it): it is renamed master.key.previous.TIME (UTC) first.
func CommitPendingKey(dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, PendingKeyFileName)); err != nil {
		return fmt.Errorf("no rotation to finish: %w", err)
	}
	cur, err := os.ReadFile(filepath.Join(dataDir, KeyFileName))
	if err != nil {
		return fmt.Errorf("read master key: %w", err)
	}
	prev := filepath.Join(dataDir, PreviousKeyFileName)
	if old, err := os.ReadFile(prev); err == nil && !bytes.Equal(old, cur) {
		if err := os.Rename(prev, prev+"."+time.Now().UTC().Format("20060102T150405.000000000Z")); err != nil {
			return fmt.Errorf("keep the earlier previous master key: %w", err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", prev, err)
	}
	if err := writeFileSynced(prev, cur); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dataDir, PendingKeyFileName), filepath.Join(dataDir, KeyFileName)); err != nil {
		return fmt.Errorf("install new master key: %w", err)
	}
	return syncDir(dataDir)
}

// writeFileSynced writes data to path (mode 0600) through a synced
// temporary file renamed into place, then syncs the directory: a crash
// leaves the old file or the new one, never a part of it. The temporary
// is always a new file: one left there (a crash's, or another's of
// another mode or a symlink) would lend its mode or target to a key.
func writeFileSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the renames in dir durable. Windows cannot sync a
// directory (NTFS journals renames itself).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
