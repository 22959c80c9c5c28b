"""Run records: what each run did, as JSON, an HTML report and Parquet metrics; optionally put on S3."""
