"""The reaper: reap_stalled_jobs fails the stages of workers that died without reporting."""
