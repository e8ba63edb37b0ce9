"""SyncFlow: ERP → ScheduleHub integration on Dagster."""
