extension Worker {
    /// A worker that runs `workflows` with the SDK's workflow runtime and `activities` with its
    /// activity executor, both using the client's data converter (and so its codecs).
    public convenience init(client: BallastClient, options: WorkerOptions, workflows: [any Workflow.Type],
                            activities: ActivityRegistry = ActivityRegistry(), maxCachedRuns: Int = 1_000) throws(WorkerError) {
        let runtime = workflows.isEmpty ? nil
            : WorkflowRuntime(workflows: workflows, dataConverter: client.options.dataConverter, maxCachedRuns: maxCachedRuns)
        let executor = activities.names.isEmpty ? nil
            : ActivityExecutor(activities: activities, dataConverter: client.options.dataConverter)
        try self.init(client: client, options: options, workflows: runtime, activities: executor)
    }
}
