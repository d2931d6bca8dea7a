package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// file creates a file in project projectID ("" = p), created ago before
// T0, after applying edit.
func (e *jobsEnv) file(projectID string, ago time.Duration, edit func(*core.File)) *core.File {
	e.t.Helper()
	if projectID == "" {
		projectID = e.p
	}
	f := NewFile(projectID, T0.Add(-ago))
	if edit != nil {
		edit(f)
	}
	if err := e.s.CreateFile(e.ctx, f); err != nil {
		e.t.Fatalf("CreateFile: %v", err)
	}
	return f
}

func (e *jobsEnv) getFile(id string) *core.File {
	e.t.Helper()
	f, err := e.s.GetFile(e.ctx, "", id)
	if err != nil {
		e.t.Fatalf("GetFile(%s): %v", id, err)
	}
	return f
}

func fileIDs(fs []*core.File) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

func testFileRoundTrip(t *testing.T, e *jobsEnv) {
	f := e.file("", 0, func(f *core.File) { f.Source, f.UpdateTime = "GENERATED", T0.Add(time.Second) })
	got, err := e.s.GetFile(e.ctx, e.p, f.ID)
	if err != nil {
		t.Fatalf("GetFile: %v", err)
	}
	wantEqual(t, "GetFile", got, f)
	wantEqual(t, "GetFile any project", e.getFile(f.ID), f)

	forever := e.file("", time.Minute, func(f *core.File) { f.ExpireTime = time.Time{} })
	if got := e.getFile(forever.ID); !got.ExpireTime.IsZero() {
		t.Errorf("ExpireTime of a file that never expires = %v", got.ExpireTime)
	}
}

func testCreateFileDuplicate(t *testing.T, e *jobsEnv) {
	f := e.file("", 0, nil)
	dup := NewFile(e.p, T0.Add(time.Hour))
	dup.ID = f.ID
	if err := e.s.CreateFile(e.ctx, dup); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateFile(duplicate) = %v, want ErrAlreadyExists", err)
	}
	wantEqual(t, "original after duplicate", e.getFile(f.ID), f)
}

// testFileNamesPerProject: a file's id is unique within its project only
// (issue 13, defect 8): another project creates the same id, reads,
// lists and deletes its own file, never the first one.
func testFileNamesPerProject(t *testing.T, e *jobsEnv) {
	mine := e.file("", time.Minute, nil)
	theirs := NewFile(e.q, T0)
	theirs.ID, theirs.DisplayName = mine.ID, "theirs"
	if err := e.s.CreateFile(e.ctx, theirs); err != nil {
		t.Fatalf("CreateFile(same id, other project) = %v, want success", err)
	}
	for _, want := range []*core.File{mine, theirs} {
		got, err := e.s.GetFile(e.ctx, want.ProjectID, want.ID)
		if err != nil {
			t.Fatalf("GetFile(%s): %v", want.ProjectID, err)
		}
		wantEqual(t, "GetFile("+want.ProjectID+")", got, want)
		fs, err := e.s.ListFiles(e.ctx, want.ProjectID, "", 10)
		if err != nil {
			t.Fatalf("ListFiles(%s): %v", want.ProjectID, err)
		}
		wantEqual(t, "ListFiles("+want.ProjectID+")", fs, []*core.File{want})
	}
	if err := e.s.DeleteFile(e.ctx, e.q, theirs.ID); err != nil {
		t.Fatalf("DeleteFile(other project): %v", err)
	}
	got, err := e.s.GetFile(e.ctx, e.p, mine.ID)
	if err != nil {
		t.Fatalf("GetFile after the other project's delete: %v", err)
	}
	wantEqual(t, "file after the other project's delete", got, mine)
	_, err = e.s.GetFile(e.ctx, e.q, theirs.ID)
	wantNotFound(t, "GetFile(deleted, other project)", err)
	wantNotFound(t, "DeleteFile(other project again)", e.s.DeleteFile(e.ctx, e.q, theirs.ID))
}

func testFileIsolation(t *testing.T, e *jobsEnv) {
	f := e.file("", 0, nil)
	_, err := e.s.GetFile(e.ctx, e.q, f.ID)
	wantNotFound(t, "GetFile(other project)", err)
	_, err = e.s.GetFile(e.ctx, e.p, "missing")
	wantNotFound(t, "GetFile(missing)", err)
	wantNotFound(t, "DeleteFile(other project)", e.s.DeleteFile(e.ctx, e.q, f.ID))
	fs, err := e.s.ListFiles(e.ctx, e.q, "", 10)
	if err != nil || len(fs) != 0 {
		t.Errorf("ListFiles(other project) = %v, %v; want nothing", fileIDs(fs), err)
	}
	wantEqual(t, "file after other project's calls", e.getFile(f.ID), f)
}

func testListFiles(t *testing.T, e *jobsEnv) {
	var all []*core.File // newest first
	for i := range 5 {
		all = append(all, e.file("", time.Duration(i)*time.Minute, nil))
	}
	e.file(e.q, 0, nil)
	fs, err := e.s.ListFiles(e.ctx, e.p, "", 100)
	if err != nil {
		t.Fatalf("ListFiles: %v", err)
	}
	wantEqual(t, "ListFiles ids", fileIDs(fs), fileIDs(all))
	if len(fs) > 0 {
		wantEqual(t, "ListFiles first file", fs[0], all[0])
	}
	var paged []string
	cursor := ""
	for range 10 {
		page, err := e.s.ListFiles(e.ctx, e.p, cursor, 2)
		if err != nil {
			t.Fatalf("ListFiles: %v", err)
		}
		if len(page) > 2 {
			t.Fatalf("page of %d files, limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, fileIDs(page)...)
		cursor = page[len(page)-1].ID
	}
	wantEqual(t, "paged ids", paged, fileIDs(all))
}

func testDeleteFile(t *testing.T, e *jobsEnv) {
	f := e.file("", 0, nil)
	other := e.file("", time.Minute, nil)
	if err := e.s.DeleteFile(e.ctx, e.p, f.ID); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	_, err := e.s.GetFile(e.ctx, "", f.ID)
	wantNotFound(t, "GetFile after delete", err)
	wantNotFound(t, "DeleteFile again", e.s.DeleteFile(e.ctx, e.p, f.ID))
	wantEqual(t, "other file", e.getFile(other.ID), other)
	// The id is free again (a resumed job rewrites its output file).
	if err := e.s.CreateFile(e.ctx, f); err != nil {
		t.Errorf("CreateFile with a deleted file's id: %v", err)
	}
}

func testExpiredFiles(t *testing.T, e *jobsEnv) {
	expiring := func(at time.Time) func(*core.File) { return func(f *core.File) { f.ExpireTime = at } }
	want := []string{
		e.file("", 3*time.Minute, expiring(T0.Add(-time.Hour))).ID,
		e.file("", 2*time.Minute, expiring(T0)).ID, // at now: expired
		e.file(e.q, time.Minute, expiring(T0.Add(-time.Minute))).ID,
	}
	e.file("", 0, expiring(time.Time{}))
	e.file("", 0, expiring(T0.Add(time.Microsecond)))

	got, err := e.s.ExpiredFiles(e.ctx, T0, 100)
	if err != nil {
		t.Fatalf("ExpiredFiles: %v", err)
	}
	wantEqual(t, "ExpiredFiles", sorted(fileIDs(got)), sorted(want))
	for _, f := range got {
		wantEqual(t, "expired file", f, e.getFile(f.ID))
	}
	got, err = e.s.ExpiredFiles(e.ctx, T0, 2)
	if err != nil {
		t.Fatalf("ExpiredFiles(2): %v", err)
	}
	if len(got) != 2 {
		t.Errorf("ExpiredFiles(limit 2) returned %d files", len(got))
	}
	for _, f := range got {
		if !slices.Contains(want, f.ID) {
			t.Errorf("ExpiredFiles(limit 2) returned %s, not expired", f.ID)
		}
	}
}

// upload creates an upload session of project p last updated at at, after
// applying edits.
func (e *jobsEnv) upload(at time.Time, size int64, edits ...func(*core.Upload)) *core.Upload {
	e.t.Helper()
	f := NewFile(e.p, at)
	u := &core.Upload{ID: core.NewID(), ProjectID: e.p, Size: size, CreateTime: at, UpdateTime: at,
		File: core.File{ID: f.ID, ProjectID: e.p, DisplayName: f.DisplayName, MIMEType: "video/mp4",
			Source: "UPLOADED", ExpireTime: f.ExpireTime}}
	for _, edit := range edits {
		edit(u)
	}
	if err := e.s.CreateUpload(e.ctx, u); err != nil {
		e.t.Fatalf("CreateUpload: %v", err)
	}
	return u
}

func (e *jobsEnv) getUpload(id string) *core.Upload {
	e.t.Helper()
	u, err := e.s.GetUpload(e.ctx, id)
	if err != nil {
		e.t.Fatalf("GetUpload(%s): %v", id, err)
	}
	return u
}

// wantUpload compares the fields an upload session keeps: its own, and
// the metadata the file will be created with.
func wantUpload(t *testing.T, what string, got, want *core.Upload) {
	t.Helper()
	type kept struct {
		ID, ProjectID                           string
		Size, Received                          int64
		CreateTime, UpdateTime                  time.Time
		FileID, FileProject, Name, MIME, Source string
		FileExpire                              time.Time
	}
	k := func(u *core.Upload) kept {
		return kept{u.ID, u.ProjectID, u.Size, u.Received, u.CreateTime, u.UpdateTime,
			u.File.ID, u.File.ProjectID, u.File.DisplayName, u.File.MIMEType, u.File.Source, u.File.ExpireTime}
	}
	wantEqual(t, what, k(got), k(want))
}

func testUploadRoundTrip(t *testing.T, e *jobsEnv) {
	u := e.upload(T0, 100)
	wantUpload(t, "GetUpload", e.getUpload(u.ID), u)
	unknown := e.upload(T0.Add(time.Second), -1, func(u *core.Upload) { u.File.ExpireTime = time.Time{} })
	wantUpload(t, "GetUpload (unknown size)", e.getUpload(unknown.ID), unknown)

	if err := e.s.CreateUpload(e.ctx, u); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateUpload(duplicate) = %v, want ErrAlreadyExists", err)
	}
	_, err := e.s.GetUpload(e.ctx, "missing")
	wantNotFound(t, "GetUpload(missing)", err)
}

func testAdvanceUpload(t *testing.T, e *jobsEnv) {
	u := e.upload(T0, 100)
	if err := e.s.AdvanceUpload(e.ctx, u.ID, 0, 40, T0.Add(time.Second)); err != nil {
		t.Fatalf("AdvanceUpload(0→40): %v", err)
	}
	u.Received, u.UpdateTime = 40, T0.Add(time.Second)
	wantUpload(t, "after 0→40", e.getUpload(u.ID), u)

	for _, from := range []int64{0, 39, 41} {
		if err := e.s.AdvanceUpload(e.ctx, u.ID, from, 90, T0.Add(time.Minute)); !errors.Is(err, core.ErrFailedPrecondition) {
			t.Errorf("AdvanceUpload(from %d, at 40) = %v, want ErrFailedPrecondition", from, err)
		}
	}
	wantUpload(t, "after refused chunks", e.getUpload(u.ID), u)

	if err := e.s.AdvanceUpload(e.ctx, u.ID, 40, 100, T0.Add(2*time.Second)); err != nil {
		t.Fatalf("AdvanceUpload(40→100): %v", err)
	}
	u.Received, u.UpdateTime = 100, T0.Add(2*time.Second)
	wantUpload(t, "after 40→100", e.getUpload(u.ID), u)
}

// testAdvanceUploadConcurrent: of concurrent chunks at one offset exactly
// one is accepted.
func testAdvanceUploadConcurrent(t *testing.T, e *jobsEnv) {
	u := e.upload(T0, -1)
	const chunks = 8
	var mu sync.Mutex
	var won []int64
	var wg sync.WaitGroup
	for i := range chunks {
		to := int64(10 + i)
		wg.Go(func() {
			err := e.s.AdvanceUpload(e.ctx, u.ID, 0, to, T0.Add(time.Second))
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, to)
				mu.Unlock()
			case !errors.Is(err, core.ErrFailedPrecondition):
				t.Errorf("AdvanceUpload: %v", err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d concurrent chunks at offset 0 accepted, want 1", len(won))
	}
	if got := e.getUpload(u.ID).Received; got != won[0] {
		t.Errorf("Received = %d, want the accepted chunk's %d", got, won[0])
	}
}

func testDeleteUpload(t *testing.T, e *jobsEnv) {
	u := e.upload(T0, 100)
	other := e.upload(T0, 10)
	if err := e.s.DeleteUpload(e.ctx, u.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	_, err := e.s.GetUpload(e.ctx, u.ID)
	wantNotFound(t, "GetUpload after delete", err)
	wantNotFound(t, "DeleteUpload again", e.s.DeleteUpload(e.ctx, u.ID))
	wantUpload(t, "other upload", e.getUpload(other.ID), other)
}

func testStaleUploads(t *testing.T, e *jobsEnv) {
	cutoff := T0.Add(-time.Hour)
	old := e.upload(cutoff.Add(-time.Hour), 100)
	older := e.upload(cutoff.Add(-2*time.Hour), 100)
	e.upload(cutoff, 100) // updated at the cutoff: not before it
	e.upload(T0, 100)
	stale := func(cutoff time.Time, limit int) []string {
		t.Helper()
		us, err := e.s.StaleUploads(e.ctx, cutoff, limit)
		if err != nil {
			t.Fatalf("StaleUploads: %v", err)
		}
		var ids []string
		for _, u := range us {
			ids = append(ids, u.ID)
			if u.ID == old.ID {
				wantUpload(t, "stale upload", u, old)
			}
		}
		return ids
	}
	wantEqual(t, "StaleUploads", sorted(stale(cutoff, 100)), sorted([]string{old.ID, older.ID}))
	if got := stale(cutoff, 1); len(got) != 1 || (got[0] != old.ID && got[0] != older.ID) {
		t.Errorf("StaleUploads(limit 1) = %v", got)
	}
	// A chunk refreshes the session.
	if err := e.s.AdvanceUpload(e.ctx, old.ID, 0, 10, T0); err != nil {
		t.Fatalf("AdvanceUpload: %v", err)
	}
	wantEqual(t, "StaleUploads after a chunk", stale(cutoff, 100), []string{older.ID})
}
