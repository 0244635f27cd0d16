package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/tokenward/tokenward"
)

// The journal file: journalMagic, then one frame per entry:
//
//	uint32 length | uint32 CRC-32C of the payload | payload (Canonical(e))
//
// big-endian. The payload is the canonical encoding the entry's hash is
// computed over, so the journal holds exactly what the chain signs.
const (
	journalMagic    = "tokenward-audit-journal-v1\n"
	frameHeaderSize = 8
	// maxFrame bounds one payload: an entry is a few hundred bytes, and a
	// length beyond this inside the file is corruption, not an entry.
	maxFrame = 1 << 20
)

// castagnoli is made on first use: building its SSE4.2 tables costs a tenth
// of a millisecond at every start of the binary otherwise.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// ErrJournalInUse is returned by Open when another process holds the
// journal: one server at a time may answer from it.
var ErrJournalInUse = errors.New("audit: the journal is in use by another tokenward server")

// appendFrame appends payload's frame to b.
func appendFrame(b, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload))) // #nosec G115 -- a frame holds one encoded entry, bounded far below 4 GiB
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli()))
	return append(b, payload...)
}

// sealFrame fills in the header of a frame whose payload follows
// frameHeaderSize reserved bytes.
func sealFrame(frame []byte) {
	payload := frame[frameHeaderSize:]
	binary.BigEndian.PutUint32(frame, uint32(len(payload))) // #nosec G115 -- a frame holds one encoded entry, bounded far below 4 GiB
	binary.BigEndian.PutUint32(frame[4:], crc32.Checksum(payload, castagnoli()))
}

// parseFrames splits a journal's body (after the magic) into payloads. It
// returns the length of the well-formed prefix: what follows it is a torn
// final write (a frame running past the end, a final frame whose checksum
// fails, or zeros a power failure left, also after a frame it cut), which
// the caller cuts off. A bad frame with more data after it is corruption,
// and an error.
func parseFrames(body []byte) (payloads [][]byte, valid int, err error) {
	off := 0
	for off < len(body) {
		rest := body[off:]
		if len(rest) < frameHeaderSize {
			break
		}
		n := binary.BigEndian.Uint32(rest)
		sum := binary.BigEndian.Uint32(rest[4:])
		if n == 0 {
			if allZero(rest) {
				break
			}
			return nil, off, tokenward.Errorf(tokenward.EINVALID, "audit: journal corrupt at byte %d: empty frame", off)
		}
		if n > maxFrame {
			// No append writes such a length, not even half-done.
			return nil, off, tokenward.Errorf(tokenward.EINVALID, "audit: journal corrupt at byte %d: frame of %d bytes", off, n)
		}
		if uint64(n) > uint64(len(rest)-frameHeaderSize) { // #nosec G115 -- len(rest) >= frameHeaderSize here, so the difference is not negative
			break // runs past the end: the last write did not complete
		}
		end := frameHeaderSize + int(n)
		payload := rest[frameHeaderSize:end]
		if crc32.Checksum(payload, castagnoli()) != sum {
			// The last frame, or the last with data: a power failure can
			// keep a group write's first pages and leave zeros after them.
			if end == len(rest) || allZero(rest[end:]) {
				break
			}
			return nil, off, tokenward.Errorf(tokenward.EINVALID, "audit: journal corrupt at byte %d: checksum mismatch", off)
		}
		payloads = append(payloads, payload)
		off += end
	}
	return payloads, off, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseJournal reads a whole journal file's contents into entries. torn is
// the number of trailing bytes that are not a complete frame.
func parseJournal(data []byte) (entries []*tokenward.AuditEntry, torn int, err error) {
	if len(data) < len(journalMagic) {
		if string(data) == journalMagic[:len(data)] {
			return nil, len(data), nil // the header itself was torn
		}
		return nil, 0, tokenward.Errorf(tokenward.EINVALID, "audit: not a tokenward audit journal")
	}
	if string(data[:len(journalMagic)]) != journalMagic {
		return nil, 0, tokenward.Errorf(tokenward.EINVALID, "audit: not a tokenward audit journal (or a newer version)")
	}
	body := data[len(journalMagic):]
	payloads, valid, err := parseFrames(body)
	if err != nil {
		return nil, 0, err
	}
	for i, p := range payloads {
		e, err := ParseCanonical(p)
		if err != nil {
			return nil, 0, fmt.Errorf("audit: journal entry %d: %w", i+1, err)
		}
		entries = append(entries, e)
	}
	return entries, len(body) - valid, nil
}

// journalFile is the open, locked journal.
type journalFile struct {
	f    *os.File
	size int64 // where the next frame goes
}

// openJournalFile opens (creating, mode 0600) and locks the journal at
// path, reads its entries and cuts off a torn tail.
func openJournalFile(path string) (_ *journalFile, _ []*tokenward.AuditEntry, torn int, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("audit: journal: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := lockFile(f); err != nil {
		return nil, nil, 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("audit: journal: %w", err)
	}
	entries, torn, err := parseJournal(data)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w (%s)", err, path)
	}
	j := &journalFile{f: f, size: int64(len(data) - torn)}
	if j.size < int64(len(journalMagic)) {
		if err := j.reset(); err != nil {
			return nil, nil, 0, err
		}
	} else if torn > 0 {
		if err := f.Truncate(j.size); err != nil {
			return nil, nil, 0, fmt.Errorf("audit: journal: cut torn tail: %w", err)
		}
	}
	return j, entries, torn, nil
}

// append writes frames at the end. A failed or short write is undone, so
// the file never keeps half a frame that a later frame would follow; if
// even that fails the journal is unusable and the error says so.
func (j *journalFile) append(frames []byte) error {
	n, err := j.f.WriteAt(frames, j.size)
	if err == nil && n == len(frames) {
		j.size += int64(n)
		return nil
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	return j.undo(j.size, fmt.Errorf("audit: journal write: %w", err))
}

// undo cuts the file back to size after err, returning err, or a
// *journalBroken when the cut fails.
func (j *journalFile) undo(size int64, err error) error {
	if terr := j.f.Truncate(size); terr != nil {
		return &journalBroken{fmt.Errorf("%w; undo: %w", err, terr)}
	}
	j.size = size
	return err
}

// journalBroken is an append whose partial frame could not be removed:
// nothing may be appended after it.
type journalBroken struct{ err error }

func (e *journalBroken) Error() string { return e.err.Error() }
func (e *journalBroken) Unwrap() error { return e.err }

// reset empties the journal down to its header. Its durability does not
// matter: entries that come back after a power failure are in the store
// already, and recovery skips them.
func (j *journalFile) reset() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("audit: journal reset: %w", err)
	}
	if _, err := j.f.WriteAt([]byte(journalMagic), 0); err != nil {
		return fmt.Errorf("audit: journal reset: %w", err)
	}
	j.size = int64(len(journalMagic))
	return nil
}

func (j *journalFile) sync() error {
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("audit: journal sync: %w", err)
	}
	return nil
}

// close releases the lock with the file.
func (j *journalFile) close() error { return j.f.Close() }
