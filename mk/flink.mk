# Apache Flink 2.3.0 (module jars, its Kafka connector, log4j) into flink/lib and scalelab's
# own Flink jobs (frames, join) into flink/target/scalelab-flink-jobs.jar, both from flink/pom.xml.
FLINK_STAMP := flink/lib/.fetched
FLINK_JOBS := flink/target/scalelab-flink-jobs.jar
FLINK_SOURCES := $(shell find flink/src -name '*.java' 2>/dev/null)

.PHONY: flink
flink: $(FLINK_STAMP) $(FLINK_JOBS)

$(FLINK_STAMP): flink/pom.xml
	@command -v java >/dev/null || { echo "java is missing: apt-get install openjdk-17-jdk-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn is missing: apt-get install maven"; exit 1; }
	rm -rf flink/lib
	cd flink && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	@touch $(FLINK_STAMP)

$(FLINK_JOBS): flink/pom.xml $(FLINK_SOURCES)
	cd flink && mvn -q -B package
