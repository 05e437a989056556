# Installs manygil's C++ package from BUILD_DIR into a scratch prefix, then configures, builds and
# runs two projects outside manygil's tree against it, as C++ hosts would: tests/cmake/consumer
# (find_package(manygil), manygil::manygil: everything) and tests/cmake/consumer_core
# (COMPONENTS core, manygil::core: the runtime alone, configured with OpenSSL hidden). Then configures
# manygil's own tree with MANYGIL_BUILD_HTTP=OFF, llhttp's directories ignored and OpenSSL hidden:
# a host that builds the runtime from source needs neither. Run with cmake -P.
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message("${out}")
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
    endif()
endfunction()

run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}" --component dev)

# consumer: everything. consumer_core: the runtime alone, without OpenSSL.
foreach(project consumer consumer_core)
    set(build "${WORK_DIR}/${project}-build")
    set(extra)
    if(project STREQUAL "consumer_core")
        set(extra -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=TRUE)
    endif()
    run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/${project}" -B "${build}" -G Ninja
        "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}" "-DCMAKE_PREFIX_PATH=${prefix}"
        "-DCMAKE_CXX_COMPILER=${CXX}" ${extra})  # no Python hint: the package knows its CPython
    run("${CMAKE_COMMAND}" --build "${build}")
endforeach()
run("${WORK_DIR}/consumer-build/consumer")
run("${WORK_DIR}/consumer_core-build/core_consumer")

# manygil's own tree, core only: configures without llhttp or OpenSSL.
run("${CMAKE_COMMAND}" -S "${MANYGIL_SOURCE_DIR}" -B "${WORK_DIR}/core-only-build" -G Ninja
    "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}" "-DCMAKE_CXX_COMPILER=${CXX}" "-DPython_EXECUTABLE=${PYTHON}"
    -DMANYGIL_BUILD_HTTP=OFF -DMANYGIL_BUILD_TESTS=OFF -DMANYGIL_BUILD_EXAMPLES=OFF
    -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=TRUE "-DCMAKE_IGNORE_PATH=${LLHTTP_INCLUDE_DIR}\;${LLHTTP_SOURCE_DIR}")
file(READ "${WORK_DIR}/core-only-build/CMakeCache.txt" cache)
if(cache MATCHES "LLHTTP_SOURCE_DIR" OR NOT cache MATCHES "MANYGIL_BUILD_HTTP:BOOL=OFF")
    message(FATAL_ERROR "the core-only configure looked for llhttp")
endif()
message("core-only configure: no llhttp, no OpenSSL")
