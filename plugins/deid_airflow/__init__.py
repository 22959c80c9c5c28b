"""deid's Airflow side: the hook that resolves deid.yaml's names from Airflow, the step operators, the failure
alert and the run record. No engine logic: every operator calls a deid step function (deid.steps).

Airflow puts its plugins folder on sys.path, so DAG files import this package as `deid_airflow`.
"""
