"""Per-bucket indexes over the jobs, so that listing (`GET /jobs`) need not walk every job.

CI's listing is filtered by tag, and usually by queue, state or input object; the gateway's
reconcile after a lost submit lists one input object's recent jobs. Walking every job of the
bucket made that cost grow with the whole history of the bucket (bench/README.md, "Faults").

`BucketJobs` keeps, for one bucket:

* every job, by tag, by input object key and by queue, and a workflow run's jobs by their
  workflow id: lists in creation (`seq`) order, so a
  listing walks one of them from either end, starts at a cursor by bisection and stops once it
  has a page and one more;
* the jobs in each state: dicts (insertion-ordered, not seq-ordered), moved on every state
  change through `Job.on_state_change`, sorted only when a listing picks them.

Jobs are only ever added (the emulator forgets none), in increasing `seq`, so appending keeps
the lists ordered. Which index serves a listing, and the proof that it answers exactly what a
full scan answers, are in `listing`.
"""

from __future__ import annotations

from ci_emulator.jobs import Job, JobState


class BucketJobs:
    def __init__(self) -> None:
        self.all: list[Job] = []
        self.by_tag: dict[str, list[Job]] = {}
        self.by_object: dict[str, list[Job]] = {}
        self.by_queue: dict[str, list[Job]] = {}
        self.by_workflow: dict[str, list[Job]] = {}
        """Only the jobs workflow runs started (`JobSpec.workflow`), by workflow id."""
        self.by_state: dict[JobState, dict[str, Job]] = {state: {} for state in JobState}

    def __len__(self) -> int:
        return len(self.all)

    def add(self, job: Job) -> None:
        """Index a new job (its seq is above every indexed one) and follow its state changes."""
        if self.all and job.seq <= self.all[-1].seq:
            raise ValueError(f"job {job.job_id} is older than the newest indexed job")
        self.all.append(job)
        self.by_tag.setdefault(job.spec.tag, []).append(job)
        self.by_object.setdefault(job.spec.object_key, []).append(job)
        self.by_queue.setdefault(job.spec.queue_id, []).append(job)
        if job.spec.workflow is not None:
            self.by_workflow.setdefault(job.spec.workflow.workflow_id, []).append(job)
        self.by_state[job.state][job.job_id] = job
        job.on_state_change = self._moved

    def _moved(self, job: Job, previous: JobState) -> None:
        del self.by_state[previous][job.job_id]
        self.by_state[job.state][job.job_id] = job
