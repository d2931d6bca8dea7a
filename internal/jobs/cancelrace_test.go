package jobs_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// deletedMeanwhile is a job store on which a delete (on another
// instance) overtakes a cancel: the job is cancelled when the cancel's
// transition reads it, and gone right after.
type deletedMeanwhile struct {
	core.JobStore
	id string
}

func (d *deletedMeanwhile) UpdateJob(ctx context.Context, projectID, id string, fn func(*core.Job) error) (*core.Job, error) {
	if id != d.id {
		return d.JobStore.UpdateJob(ctx, projectID, id, fn)
	}
	d.id = "" // once
	if _, err := d.JobStore.UpdateJob(ctx, projectID, id, func(j *core.Job) error {
		j.State = core.JobCancelled // the delete's own cancel
		return nil
	}); err != nil {
		return nil, err
	}
	j, err := d.JobStore.UpdateJob(ctx, projectID, id, fn)
	if derr := d.JobStore.DeleteJob(ctx, projectID, id); derr != nil {
		return nil, derr
	}
	return j, err
}

// TestCancelOvertakenByDeleteIsNotFound: a cancel that finds the job
// settled and then deleted (a delete on another instance cancels first)
// answers 404 like any deleted job. It answered 400 FAILED_PRECONDITION
// "… is settled", which TestCancelRacesAcrossInstances met in CI.
func TestCancelOvertakenByDeleteIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	catalog, err := core.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	p := core.Project{ID: core.NewID(), Name: "p", CreateTime: time.Now()}
	if err := st.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	j := &core.Job{ID: core.NewID(), ProjectID: p.ID, Kind: core.JobBatch, State: core.JobPending, Model: "models/m",
		CreateTime: time.Now(), UpdateTime: time.Now()}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	racing := &deletedMeanwhile{JobStore: st, id: j.ID}
	svc, err := jobs.New(jobs.Config{Store: racing, Publisher: publish.New(publish.Config{Store: st, Catalog: catalog}),
		Dir: t.TempDir(), SoleRunner: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Cancel(ctx, p.ID, j.ID, core.JobBatch)
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Cancel = %v, want NOT_FOUND", err)
	}
}
