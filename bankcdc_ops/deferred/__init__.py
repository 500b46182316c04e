"""Airflow tasks that start, run and end in the triggerer: no worker process, no DAG parse per try.

A worker process costs ~3 CPU seconds on this stack's 2 cores (interpreter, Airflow, the DAG
file); these tasks do their waiting and probing as asyncio triggers and end the task from the
triggerer (TaskSuccessEvent / TaskFailedEvent), so a run of them costs the scheduler's and the
triggerer's bookkeeping only.
"""
